"""The parts of ``analysis.json`` that hold no group summary: figures' bins, curves, exchange
rates, comparisons, the headline, what made each synthetic source, the targeted curves.

Small frozen :class:`~synthaug.study.codec.Record` dataclasses; :mod:`synthaug.study.records`
gathers them (with the unit rows and group summaries) into
:class:`~synthaug.study.records.StudyAnalysis` and re-exports them, so they are imported from
there. :func:`make_group_id` is here because :class:`MainSetting` builds group ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from synthaug.study.codec import Record, record_from_dict, record_to_dict
from synthaug.study.stats import ExchangeRate, Interval

__all__ = [
    "AugmentationComparison",
    "BootstrapInterval",
    "ComparisonKind",
    "DataKind",
    "ExchangeRateRow",
    "GeneratorProvenance",
    "Headline",
    "Histogram",
    "LearningCurve",
    "MainSetting",
    "MetricDifference",
    "PairedComparison",
    "ReliabilityBins",
    "SampleImage",
    "SyntheticWorth",
    "TargetedComparison",
    "TargetedCurve",
    "make_group_id",
]


DataKind = Literal["real", "synthetic", "mixed"]
ComparisonKind = Literal[
    "synthetic vs real", "mixed vs real", "method vs baseline", "treatment vs plain", "real-image source vs text-only",
    "generated vs no augmentation", "generated vs best classical", "generated on top of best classical",
]


def make_group_id(regime: str, size: int, backbone: str, method: str) -> str:
    """Readable id of a group, unique within a study: ``"real/n=8/cnn/deterministic"``.

    The only place the format is written; a unit's id adds ``/seed=<seed>``.
    """
    return f"{regime}/n={size}/{backbone}/{method}"


@dataclass(frozen=True)
class BootstrapInterval(Record):
    """A statistic on the test set with its percentile-bootstrap interval over test examples."""

    point: float
    low: float
    high: float


@dataclass(frozen=True)
class ReliabilityBins(Record):
    """A reliability diagram's bins (see :class:`synthaug.metrics.ReliabilityDiagram`)."""

    bin_edges: list[float]
    bin_confidence: list[float]
    bin_accuracy: list[float]
    bin_count: list[int]
    expected_calibration_error: float
    maximum_calibration_error: float
    strategy: str


@dataclass(frozen=True)
class Histogram(Record):
    """Histograms of one uncertainty score on several evaluation sets, on shared bin edges.

    Attributes:
        edges: ``bins + 1`` bin edges.
        counts: Evaluation set (``"test"`` or an OOD set) -> count per bin.
        means: Evaluation set -> mean score.
    """

    edges: list[float]
    counts: dict[str, list[int]]
    means: dict[str, float]


@dataclass(frozen=True)
class LearningCurve(Record):
    """Accuracy and ECE against images per class for one regime, backbone and method.

    Attributes:
        regime: Regime name.
        data: The regime's kind of data.
        source: Its synthetic source (``None`` for real data).
        backbone: Backbone name.
        method: Method name.
        sizes: Images per class, ascending.
        accuracy: Accuracy over seeds at each size.
        ece: ECE over seeds at each size.
        by_seed: Size -> seed -> accuracy (what the exchange-rate bootstrap resamples).
    """

    regime: str
    data: DataKind
    source: str | None
    backbone: str
    method: str
    sizes: list[int]
    accuracy: list[Interval]
    ece: list[Interval]
    by_seed: dict[int, dict[int, float]]


@dataclass(frozen=True)
class ExchangeRateRow:
    """The exchange rate of one synthetic regime's curve against the real curve at one size.

    Attributes:
        synthetic_regime: The synthetic regime.
        source: Its synthetic source.
        backbone: Backbone name.
        method: Method name.
        largest_synthetic: Largest synthetic size measured.
        estimate: The rate at ``estimate.real_per_class`` real images per class.
        real_regime: The real curve read against when it is not the plain (un-augmented) one:
            a real + classical augmentation regime (``None``: the plain real curve).
        source_kind: What the source's images are: ``generated`` or ``retrieved`` (real
            images retrieved from a pool, the baseline of Geng et al. 2024), as the report names them.
    """

    synthetic_regime: str
    source: str | None
    backbone: str
    method: str
    largest_synthetic: int
    estimate: ExchangeRate
    real_regime: str | None = None
    source_kind: str = "generated"

    def to_dict(self) -> dict[str, Any]:
        """Plain data, the estimate's fields flattened to the top level."""
        return {
            "synthetic_regime": self.synthetic_regime,
            "source": self.source,
            "backbone": self.backbone,
            "method": self.method,
            "largest_synthetic": self.largest_synthetic,
            **({"real_regime": self.real_regime} if self.real_regime is not None else {}),
            "source_kind": self.source_kind,
            **self.estimate.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExchangeRateRow:
        """Inverse of :meth:`to_dict`."""
        return cls(
            synthetic_regime=data["synthetic_regime"],
            source=data.get("source"),
            backbone=data["backbone"],
            method=data["method"],
            largest_synthetic=int(data["largest_synthetic"]),
            estimate=ExchangeRate.from_dict(data),
            real_regime=data.get("real_regime"),
            source_kind=data.get("source_kind", "generated"),  # absent from analyses written before it
        )


@dataclass(frozen=True)
class SyntheticWorth(Record):
    """How many real images per class the largest synthetic set of a curve is worth.

    Attributes:
        synthetic_regime: The synthetic regime.
        source: Its synthetic source.
        backbone: Backbone name.
        method: Method name.
        synthetic_per_class: The curve's largest size.
        synthetic_accuracy: Its mean accuracy.
        real_per_class: Real images per class reaching the same accuracy on the real curve.
        status: ``"interpolated"``, ``"at_or_below"`` (no more than the smallest real size)
            or ``"not_reached"`` (beats every real size).
        smallest_real: Smallest real size measured.
        largest_real: Largest real size measured.
    """

    synthetic_regime: str
    source: str | None
    backbone: str
    method: str
    synthetic_per_class: int
    synthetic_accuracy: float
    real_per_class: float
    status: str
    smallest_real: int
    largest_real: int


@dataclass(frozen=True)
class MetricDifference(Record):
    """A paired difference ``treatment - baseline`` of one metric.

    Attributes:
        seeds: Mean and t-interval of the per-seed differences.
        test_bootstrap: Paired bootstrap over test examples (accuracy only).
    """

    seeds: Interval
    test_bootstrap: BootstrapInterval | None = None


@dataclass(frozen=True)
class PairedComparison(Record):
    """Two groups compared seed by seed (and test example by test example).

    Attributes:
        kind: ``"synthetic vs real"``, ``"mixed vs real"``, ``"method vs baseline"`` or
            ``"treatment vs plain"``.
        treatment: Group id of the group of interest.
        baseline: Group id of the reference group.
        differences: Metric -> paired difference.
    """

    kind: ComparisonKind
    treatment: str
    baseline: str
    differences: dict[str, MetricDifference]


@dataclass(frozen=True)
class AugmentationComparison(Record):
    """Generated images against and on top of classical augmentation, at one real size.

    The three questions a practitioner who already augments asks (SaSPA, Michaeli & Fried,
    NeurIPS 2024; DA-Fusion, Trabucco et al., ICLR 2024), each a paired comparison by seed on
    the same real images:

    - ``over_none`` (X): real + generated vs real, neither augmented;
    - ``over_best`` (Y): real + generated (not augmented) vs real + the best classical policy;
    - ``on_top_of_best`` (Z): real + generated + best policy vs real + best policy (do they stack?).

    "Best" is the policy with the highest mean accuracy among the real + classical groups the
    study ran at this size, backbone and method (chosen on the test set, so Y and Z flatter
    classical augmentation slightly; with several policies, say so when reading them).

    Attributes:
        real_per_class: Real images per class (N).
        synthetic_per_class: Generated images per class added.
        source: The synthetic source.
        backbone: Backbone name.
        method: Method name.
        best_policy: The best classical policy (its label), ``None`` when the study ran none at N.
        policies: Policy label -> mean accuracy of real + that policy (what ``best_policy`` was
            chosen from; ``none`` included when measured).
        over_none: X, or ``None`` when the study has no plain real group at N.
        over_best: Y, or ``None`` without a classical policy at N.
        on_top_of_best: Z, or ``None`` without a real + generated + best-policy group.
    """

    real_per_class: int
    synthetic_per_class: int
    source: str | None
    backbone: str
    method: str
    best_policy: str | None
    policies: dict[str, float]
    over_none: PairedComparison | None = None
    over_best: PairedComparison | None = None
    on_top_of_best: PairedComparison | None = None


@dataclass(frozen=True)
class MainSetting(Record):
    """The comparison a study leads with: real against synthetic data at one size.

    Attributes:
        size: Images per class (the largest size both regimes have).
        backbone: The first backbone.
        method: The baseline (first) method.
        source: The synthetic regime's source.
        real_regime: The plain real-only regime.
        synthetic_regime: The first plain synthetic-only regime.
    """

    size: int
    backbone: str
    method: str
    source: str
    real_regime: str
    synthetic_regime: str

    def group_id(self, regime: str, method: str | None = None) -> str:
        """Id of ``regime``'s group at the main size and backbone (the baseline method unless
        ``method`` is given)."""
        return make_group_id(regime, self.size, self.backbone, method or self.method)


@dataclass(frozen=True)
class Headline(Record):
    """The question a study asks, its answer in a sentence or two, and the facts behind it.

    Attributes:
        question: The study's title.
        answer: The answer ("" when the study has no real-vs-synthetic pair).
        facts: One sentence per supporting comparison.
        main: The setting the answer is about (``None`` without a real-vs-synthetic pair;
            saved as ``{}``).
    """

    question: str
    answer: str
    facts: list[str]
    main: MainSetting | None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``main`` as ``{}`` when there is none, as files have always had it)."""
        return {**record_to_dict(self), "main": self.main.to_dict() if self.main is not None else {}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Headline:
        """Inverse of :meth:`to_dict`."""
        return record_from_dict(cls, {**data, "main": data.get("main") or None})


@dataclass(frozen=True)
class GeneratorProvenance(Record):
    """What made a synthetic source, as its folder records it (``None`` where it does not).

    Attributes:
        name: The source's name in the study.
        directory: Its folder.
        images: Images in it.
        backend: Generation backend (``"openai"``, ``"diffusers"``, ``"ddpm"``, ...).
        model: The backend's model.
        params: Generation parameters of the first image.
        prompt_example: The first image's prompt.
        cost_usd: What generating every image cost.
        synthaug_version: The synthaug that generated it.
        settings: The folder's ``generation.json`` (the whole generation spec).
    """

    name: str
    directory: str
    images: int
    backend: str | None
    model: str | None
    params: dict[str, Any] | None
    prompt_example: str | None
    cost_usd: float
    synthaug_version: str | None
    settings: dict[str, Any] | None


@dataclass(frozen=True)
class SampleImage(Record):
    """One synthetic image shown in the report, with the prompt that made it."""

    label: str
    prompt: str | None
    path: str


@dataclass(frozen=True)
class TargetedCurve(Record):
    """Test accuracy against synthetic images spent, for one targeted regime and size.

    Attributes:
        regime: The regime.
        allocate: Its rule.
        size: Starting images per class.
        images: Synthetic images spent at each point (0, budget/rounds, ..., budget).
        accuracy: Mean test accuracy over seeds at each point, with its t-interval.
        allocation: Mean images added per class in each round (class -> one value per round).
    """

    regime: str
    allocate: str
    size: int
    images: list[int]
    accuracy: list[Interval]
    allocation: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetedComparison(Record):
    """A targeted regime against the uniform one with the same budget, paired by seed.

    Attributes:
        regime: The targeted regime.
        baseline: The uniform regime.
        size: Starting images per class.
        budget: Synthetic images each spent.
        final_difference: Final test accuracy, targeted minus uniform, over seeds (t-interval).
        uniform_final: Uniform's mean final accuracy.
        images_to_match: Synthetic images at which the targeted mean curve first reaches
            ``uniform_final`` (linear between rounds); ``None`` when it never does.
        by_images: Test accuracy, targeted minus uniform, at each point of the curves
            (``images``: 0, budget/rounds, ..., budget), paired by seed.
        seeds_reaching: Seeds whose targeted curve reaches that seed's own uniform final
            accuracy at or before 60 % of the budget (linear between rounds).
    """

    regime: str
    baseline: str
    size: int
    budget: int
    final_difference: Interval
    uniform_final: float
    images_to_match: float | None
    by_images: list[Interval] = field(default_factory=list)
    seeds_reaching: int = 0

    @property
    def share_of_budget(self) -> float | None:
        """``images_to_match / budget``."""
        return None if self.images_to_match is None else self.images_to_match / self.budget

    def to_dict(self) -> dict[str, Any]:
        """Plain data, with the derived ``share_of_budget`` for whoever reads the JSON alone."""
        return {**record_to_dict(self), "share_of_budget": self.share_of_budget}
