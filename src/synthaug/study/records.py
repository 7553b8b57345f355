"""A study's results as small frozen records; ``results.jsonl`` and ``analysis.json`` are
their serialisation.

- :class:`UnitResult`: one finished unit (regime x size x backbone x method x seed), one line
  of ``results.jsonl``.
- :class:`GroupKey`: what a group of units shares (every seed of one regime x size x backbone x
  method); its :attr:`~GroupKey.group_id` is the one place the readable id is built.
- :class:`GroupSummary`, :class:`LearningCurve`, :class:`ExchangeRateRow`,
  :class:`SyntheticWorth`, :class:`PairedComparison`, :class:`Headline`: the parts of
  ``analysis.json``, gathered in :class:`StudyAnalysis`.

Every record has ``to_dict`` (plain data, the JSON keys files have always used) and
``from_dict``. Keys added after the first release (``treatment``, ``audit``) are optional
when reading, so run folders written before them still load and resume. Keys a record does
not know are ignored, so a log written by a newer synthaug still reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from synthaug.study.literature import literature_dict
from synthaug.study.shift import EpistemicVerdict, epistemic_verdicts, severity_curves
from synthaug.study.stats import ExchangeRate, Interval

__all__ = [
    "BootstrapInterval",
    "GroupKey",
    "GroupSummary",
    "Headline",
    "Histogram",
    "LearningCurve",
    "MainSetting",
    "MetricDifference",
    "PairedComparison",
    "ReliabilityBins",
    "SampleImage",
    "StudyAnalysis",
    "SyntheticWorth",
    "TargetedComparison",
    "TargetedCurve",
    "ExchangeRateRow",
    "GeneratorProvenance",
    "UnitResult",
    "derived_group_statistics",
    "make_group_id",
]

DataKind = Literal["real", "synthetic", "mixed"]
ComparisonKind = Literal[
    "synthetic vs real", "mixed vs real", "method vs baseline", "treatment vs plain", "real-image source vs text-only"
]


def make_group_id(regime: str, size: int, backbone: str, method: str) -> str:
    """Readable id of a group, unique within a study: ``"real/n=8/cnn/deterministic"``.

    The only place the format is written; a unit's id adds ``/seed=<seed>``.
    """
    return f"{regime}/n={size}/{backbone}/{method}"


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that are fields of dataclass ``cls``."""
    names = {item.name for item in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


@dataclass(frozen=True)
class GroupKey:
    """What every unit of a group shares: its training data, backbone and method.

    Attributes:
        regime: Regime name.
        data: ``"real"``, ``"synthetic"`` or ``"mixed"``.
        source: Synthetic source name (``None`` for real-only regimes).
        treatment: What a filtered, audit-weighted or robust-loss regime changes (``None``
            for a plain regime).
        size: Images per class of the regime's sweep.
        real_per_class: Real images per class in the training set.
        synthetic_per_class: Synthetic images per class in the training set.
        backbone: Backbone name.
        method: Method name (as configured; unique within a study).
        method_key: Registry key of the method (``"temperature"``, ``"bnn"``, ...).
    """

    regime: str
    data: DataKind
    source: str | None
    treatment: str | None
    size: int
    real_per_class: int
    synthetic_per_class: int
    backbone: str
    method: str
    method_key: str

    @property
    def group_id(self) -> str:
        """Readable id of the group (see :func:`make_group_id`)."""
        return make_group_id(self.regime, self.size, self.backbone, self.method)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, one key per attribute."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupKey:
        """The key of a results row or a group summary (``treatment`` may be absent)."""
        return cls(
            regime=data["regime"],
            data=data["data"],
            source=data.get("source"),
            treatment=data.get("treatment"),  # absent from logs written before treatments existed
            size=int(data["size"]),
            real_per_class=int(data["real_per_class"]),
            synthetic_per_class=int(data["synthetic_per_class"]),
            backbone=data["backbone"],
            method=data["method"],
            method_key=data["method_key"],
        )


@dataclass(frozen=True)
class UnitResult:
    """One finished unit: what it trained on, where its model and predictions are, its metrics.

    One line of ``RUN_DIR/results.jsonl`` (:meth:`to_dict` gives that line's keys).

    Attributes:
        unit_id: ``<group id>/seed=<seed>``.
        key: The unit's group (flattened into the row's top level on disk).
        audit: Audit folder a filtered or audit-weighted regime drew from, relative to the
            run folder where possible (``None`` otherwise).
        seed: The unit's seed (subsample draw and initialisation).
        n_train: Training images.
        model_key: Content key of the trained model in the cache.
        model_dir: The model's folder (relative to the run folder where possible).
        predictions: Prediction file of each evaluation set (``"test"`` and each OOD set).
        trained: Whether this run trained the model (``False``: found in the cache).
        train_seconds: Time spent training (0 when cached).
        predict_seconds: Time spent predicting (0 when cached).
        unit_seconds: Wall time of the whole unit.
        metrics: Metric name -> value on the real test set; OOD metrics are keyed
            ``<ood set>:<metric>``.
        targeted: A targeted regime's rounds (:class:`synthaug.study.targeted.TargetedRun`
            JSON), relative to the run folder where possible; ``None`` for other regimes.
    """

    unit_id: str
    key: GroupKey
    audit: str | None
    seed: int
    n_train: int
    model_key: str
    model_dir: str
    predictions: dict[str, str]
    trained: bool
    train_seconds: float
    predict_seconds: float
    unit_seconds: float
    metrics: dict[str, float]
    targeted: str | None = None

    @property
    def group_id(self) -> str:
        """The id of the unit's group."""
        return self.key.group_id

    def to_dict(self) -> dict[str, Any]:
        """The results row, with the keys ``results.jsonl`` has always used."""
        key = self.key.to_dict()
        return {
            "unit_id": self.unit_id,
            "regime": key.pop("regime"),
            "data": key.pop("data"),
            "source": key.pop("source"),
            "treatment": key.pop("treatment"),
            "audit": self.audit,
            **key,
            "seed": self.seed,
            "n_train": self.n_train,
            "model_key": self.model_key,
            "model_dir": self.model_dir,
            "predictions": dict(self.predictions),
            "trained": self.trained,
            "train_seconds": self.train_seconds,
            "predict_seconds": self.predict_seconds,
            "unit_seconds": self.unit_seconds,
            "metrics": dict(self.metrics),
            **({"targeted": self.targeted} if self.targeted is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnitResult:
        """A results row as read back from ``results.jsonl`` (any version of it)."""
        return cls(
            unit_id=data["unit_id"],
            key=GroupKey.from_dict(data),
            audit=data.get("audit"),  # absent from logs written before audited regimes existed
            seed=int(data["seed"]),
            n_train=int(data["n_train"]),
            model_key=data["model_key"],
            model_dir=data["model_dir"],
            predictions=dict(data["predictions"]),
            trained=bool(data["trained"]),
            train_seconds=float(data["train_seconds"]),
            predict_seconds=float(data["predict_seconds"]),
            unit_seconds=float(data["unit_seconds"]),
            metrics={name: float(value) for name, value in data["metrics"].items()},
            targeted=data.get("targeted"),  # only targeted regimes' rows have it
        )


@dataclass(frozen=True)
class BootstrapInterval:
    """A statistic on the test set with its percentile-bootstrap interval over test examples."""

    point: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        """Plain data."""
        return {"point": self.point, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BootstrapInterval:
        """Inverse of :meth:`to_dict`."""
        return cls(float(data["point"]), float(data["low"]), float(data["high"]))


@dataclass(frozen=True)
class ReliabilityBins:
    """A reliability diagram's bins (see :class:`synthaug.metrics.ReliabilityDiagram`)."""

    bin_edges: list[float]
    bin_confidence: list[float]
    bin_accuracy: list[float]
    bin_count: list[int]
    expected_calibration_error: float
    maximum_calibration_error: float
    strategy: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data, one key per attribute."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReliabilityBins:
        """Inverse of :meth:`to_dict`."""
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Histogram:
    """Histograms of one uncertainty score on several evaluation sets, on shared bin edges.

    Attributes:
        edges: ``bins + 1`` bin edges.
        counts: Evaluation set (``"test"`` or an OOD set) -> count per bin.
        means: Evaluation set -> mean score.
    """

    edges: list[float]
    counts: dict[str, list[int]]
    means: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"edges": self.edges, "counts": self.counts, "means": self.means}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Histogram:
        """Inverse of :meth:`to_dict`."""
        return cls(list(data["edges"]), dict(data["counts"]), dict(data["means"]))


@dataclass(frozen=True)
class GroupSummary:
    """One group's results over its seeds, and the data of its figures.

    Attributes:
        key: The group.
        seeds: Seeds of its units.
        train_seconds: Training time summed over seeds.
        metrics: Metric -> mean and t-interval over seeds.
        test_bootstrap: Metric (``accuracy``, ``ece``) -> bootstrap interval over test
            examples of the seed-averaged metric.
        reliability: Reliability bins, pooled over seeds.
        confusion: Confusion counts ``(C, C)``, rows true class, pooled over seeds.
        histograms: Score (``predictive_entropy``, ``mutual_information``,
            ``expected_entropy``) -> histograms on the test and OOD sets.
        samples_per_seed: Probability samples ``S`` of each seed's predictions.
    """

    key: GroupKey
    seeds: list[int]
    train_seconds: float
    metrics: dict[str, Interval]
    test_bootstrap: dict[str, BootstrapInterval]
    reliability: ReliabilityBins
    confusion: list[list[int]]
    histograms: dict[str, Histogram]
    samples_per_seed: list[int]

    @property
    def group_id(self) -> str:
        """The group's id."""
        return self.key.group_id

    @property
    def has_weight_samples(self) -> bool:
        """Whether the group's method samples weights (more than one probability sample),
        so that mutual information means something."""
        return max(self.samples_per_seed) > 1

    def to_dict(self) -> dict[str, Any]:
        """The group as saved in ``analysis.json`` (the key flattened to the top level)."""
        return {
            "group_id": self.group_id,
            **self.key.to_dict(),
            "seeds": list(self.seeds),
            "train_seconds": self.train_seconds,
            "metrics": {name: interval.to_dict() for name, interval in self.metrics.items()},
            "reliability": self.reliability.to_dict(),
            "confusion": self.confusion,
            "histograms": {name: histogram.to_dict() for name, histogram in self.histograms.items()},
            "samples_per_seed": list(self.samples_per_seed),
            "test_bootstrap": {name: interval.to_dict() for name, interval in self.test_bootstrap.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupSummary:
        """Inverse of :meth:`to_dict`."""
        return cls(
            key=GroupKey.from_dict(data),
            seeds=[int(seed) for seed in data["seeds"]],
            train_seconds=float(data["train_seconds"]),
            metrics={name: Interval.from_dict(value) for name, value in data["metrics"].items()},
            test_bootstrap={name: BootstrapInterval.from_dict(value) for name, value in data["test_bootstrap"].items()},
            reliability=ReliabilityBins.from_dict(data["reliability"]),
            confusion=[list(row) for row in data["confusion"]],
            histograms={name: Histogram.from_dict(value) for name, value in data["histograms"].items()},
            samples_per_seed=[int(count) for count in data["samples_per_seed"]],
        )


@dataclass(frozen=True)
class LearningCurve:
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

    def to_dict(self) -> dict[str, Any]:
        """Plain data (sizes and seeds as strings in ``by_seed``, as JSON keys must be)."""
        return {
            "regime": self.regime,
            "data": self.data,
            "source": self.source,
            "backbone": self.backbone,
            "method": self.method,
            "sizes": list(self.sizes),
            "accuracy": [interval.to_dict() for interval in self.accuracy],
            "ece": [interval.to_dict() for interval in self.ece],
            "by_seed": {
                str(size): {str(seed): value for seed, value in seeds.items()} for size, seeds in self.by_seed.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LearningCurve:
        """Inverse of :meth:`to_dict`."""
        return cls(
            regime=data["regime"],
            data=data["data"],
            source=data.get("source"),
            backbone=data["backbone"],
            method=data["method"],
            sizes=[int(size) for size in data["sizes"]],
            accuracy=[Interval.from_dict(value) for value in data["accuracy"]],
            ece=[Interval.from_dict(value) for value in data["ece"]],
            by_seed={
                int(size): {int(seed): float(value) for seed, value in seeds.items()}
                for size, seeds in data["by_seed"].items()
            },
        )


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
    """

    synthetic_regime: str
    source: str | None
    backbone: str
    method: str
    largest_synthetic: int
    estimate: ExchangeRate

    def to_dict(self) -> dict[str, Any]:
        """Plain data, the estimate's fields flattened to the top level."""
        return {
            "synthetic_regime": self.synthetic_regime,
            "source": self.source,
            "backbone": self.backbone,
            "method": self.method,
            "largest_synthetic": self.largest_synthetic,
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
        )


@dataclass(frozen=True)
class SyntheticWorth:
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

    def to_dict(self) -> dict[str, Any]:
        """Plain data, one key per attribute."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyntheticWorth:
        """Inverse of :meth:`to_dict`."""
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class MetricDifference:
    """A paired difference ``treatment - baseline`` of one metric.

    Attributes:
        seeds: Mean and t-interval of the per-seed differences.
        test_bootstrap: Paired bootstrap over test examples (accuracy only).
    """

    seeds: Interval
    test_bootstrap: BootstrapInterval | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (no ``test_bootstrap`` key when there is none)."""
        data: dict[str, Any] = {"seeds": self.seeds.to_dict()}
        if self.test_bootstrap is not None:
            data["test_bootstrap"] = self.test_bootstrap.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricDifference:
        """Inverse of :meth:`to_dict`."""
        bootstrap = data.get("test_bootstrap")
        seeds = Interval.from_dict(data["seeds"])
        return cls(seeds, None if bootstrap is None else BootstrapInterval.from_dict(bootstrap))


@dataclass(frozen=True)
class PairedComparison:
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

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "kind": self.kind,
            "treatment": self.treatment,
            "baseline": self.baseline,
            "differences": {name: difference.to_dict() for name, difference in self.differences.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairedComparison:
        """Inverse of :meth:`to_dict`."""
        return cls(
            kind=data["kind"],
            treatment=data["treatment"],
            baseline=data["baseline"],
            differences={name: MetricDifference.from_dict(value) for name, value in data["differences"].items()},
        )


@dataclass(frozen=True)
class MainSetting:
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

    def to_dict(self) -> dict[str, Any]:
        """Plain data, one key per attribute."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MainSetting:
        """Inverse of :meth:`to_dict`."""
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Headline:
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
        """Plain data."""
        return {
            "question": self.question,
            "answer": self.answer,
            "facts": list(self.facts),
            "main": self.main.to_dict() if self.main is not None else {},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Headline:
        """Inverse of :meth:`to_dict`."""
        main = data.get("main") or None
        return cls(data["question"], data["answer"], list(data["facts"]), MainSetting.from_dict(main) if main else None)


@dataclass(frozen=True)
class GeneratorProvenance:
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

    def to_dict(self) -> dict[str, Any]:
        """Plain data, one key per attribute."""
        return {item.name: getattr(self, item.name) for item in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GeneratorProvenance:
        """Inverse of :meth:`to_dict`."""
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class SampleImage:
    """One synthetic image shown in the report, with the prompt that made it."""

    label: str
    prompt: str | None
    path: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"label": self.label, "prompt": self.prompt, "path": self.path}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SampleImage:
        """Inverse of :meth:`to_dict`."""
        return cls(data["label"], data.get("prompt"), data["path"])


@dataclass(frozen=True)
class TargetedCurve:
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

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"regime": self.regime, "allocate": self.allocate, "size": self.size, "images": list(self.images),
                "accuracy": [interval.to_dict() for interval in self.accuracy], "allocation": dict(self.allocation)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetedCurve:
        """Inverse of :meth:`to_dict`."""
        return cls(regime=data["regime"], allocate=data["allocate"], size=int(data["size"]),
                   images=[int(value) for value in data["images"]],
                   accuracy=[Interval.from_dict(item) for item in data["accuracy"]],
                   allocation={label: [float(value) for value in values]
                               for label, values in data.get("allocation", {}).items()})


@dataclass(frozen=True)
class TargetedComparison:
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
        """Plain data."""
        return {"regime": self.regime, "baseline": self.baseline, "size": self.size, "budget": self.budget,
                "final_difference": self.final_difference.to_dict(), "uniform_final": self.uniform_final,
                "images_to_match": self.images_to_match, "share_of_budget": self.share_of_budget,
                "by_images": [interval.to_dict() for interval in self.by_images], "seeds_reaching": self.seeds_reaching}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetedComparison:
        """Inverse of :meth:`to_dict` (``share_of_budget`` is derived)."""
        match = data["images_to_match"]
        return cls(regime=data["regime"], baseline=data["baseline"], size=int(data["size"]),
                   budget=int(data["budget"]), final_difference=Interval.from_dict(data["final_difference"]),
                   uniform_final=float(data["uniform_final"]), images_to_match=None if match is None else float(match),
                   by_images=[Interval.from_dict(item) for item in data.get("by_images", [])],
                   seeds_reaching=int(data.get("seeds_reaching", 0)))


@dataclass(frozen=True)
class StudyAnalysis:
    """Everything the report shows, as saved in ``RUN_DIR/analysis.json``.

    Attributes:
        title: The study's title.
        classes: Class names the models learn.
        ood_sets: OOD set names.
        dataset_sizes: Images in ``pool``, ``val``, ``test`` and each ``ood:<name>`` set.
        baseline_method: The first method (what the others are compared with).
        groups: One summary per group.
        curves: Learning curves (regimes with several sizes, and mixed regimes).
        exchange_rates: Exchange rates of each synthetic curve at the configured sizes.
        worth: What each synthetic curve's largest set is worth in real images.
        comparisons: Paired comparisons.
        generators: Synthetic source -> what made it.
        samples: Synthetic source -> example images per class.
        headline: The answer the report opens with.
        shift_curves: Group id -> metric -> corruption severity -> mean over corruptions
            (severity 0: the clean test set); only groups evaluated under shift.
        epistemic: Group id -> OOD set -> verdict on the mutual-information AUROC; only
            sampling methods (a single network has no epistemic part).
        targeted_curves: Accuracy against synthetic images spent, per targeted regime and size.
        targeted_comparisons: Each targeted rule against uniform at the same budget.
    """

    title: str
    classes: list[str]
    ood_sets: list[str]
    dataset_sizes: dict[str, int]
    baseline_method: str
    groups: list[GroupSummary]
    curves: list[LearningCurve]
    exchange_rates: list[ExchangeRateRow]
    worth: list[SyntheticWorth]
    comparisons: list[PairedComparison]
    generators: dict[str, GeneratorProvenance]
    samples: dict[str, list[SampleImage]]
    headline: Headline
    shift_curves: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    epistemic: dict[str, dict[str, EpistemicVerdict]] = field(default_factory=dict)
    targeted_curves: list[TargetedCurve] = field(default_factory=list)
    targeted_comparisons: list[TargetedComparison] = field(default_factory=list)
    _by_id: dict[str, GroupSummary] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {group.group_id: group for group in self.groups})

    def group(self, group_id: str) -> GroupSummary | None:
        """The group with id ``group_id`` (``None`` when the study has no such group)."""
        return self._by_id.get(group_id)

    def to_dict(self) -> dict[str, Any]:
        """The contents of ``analysis.json``."""
        return {
            "title": self.title,
            "classes": list(self.classes),
            "ood_sets": list(self.ood_sets),
            "dataset_sizes": dict(self.dataset_sizes),
            "baseline_method": self.baseline_method,
            "groups": [group.to_dict() for group in self.groups],
            "curves": [curve.to_dict() for curve in self.curves],
            "exchange_rates": [rate.to_dict() for rate in self.exchange_rates],
            "worth": [worth.to_dict() for worth in self.worth],
            "comparisons": [comparison.to_dict() for comparison in self.comparisons],
            "generators": {name: generator.to_dict() for name, generator in self.generators.items()},
            "samples": {name: [sample.to_dict() for sample in items] for name, items in self.samples.items()},
            # Quoted for whoever reads the JSON alone; the report takes them from
            # synthaug.study.literature, so a folder written before they were records renders too.
            "literature": literature_dict(),
            "headline": self.headline.to_dict(),
            "shift_curves": {group_id: {metric: {str(severity): value for severity, value in curve.items()}
                                        for metric, curve in curves.items()}
                             for group_id, curves in self.shift_curves.items()},
            "epistemic": {group_id: {name: verdict.to_dict() for name, verdict in verdicts.items()}
                          for group_id, verdicts in self.epistemic.items()},
            "targeted_curves": [curve.to_dict() for curve in self.targeted_curves],
            "targeted_comparisons": [comparison.to_dict() for comparison in self.targeted_comparisons],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudyAnalysis:
        """Inverse of :meth:`to_dict` (``literature`` is not part of the record).

        A file written before the shift curves and epistemic verdicts were saved gets them
        computed from its groups (:func:`derived_group_statistics`); one written before the
        targeted records has none (:func:`synthaug.study.analysis.read_analysis` adds them).
        """
        groups = [GroupSummary.from_dict(group) for group in data["groups"]]
        ood_sets = list(data["ood_sets"])
        dataset_sizes = {name: int(count) for name, count in data["dataset_sizes"].items()}
        if "shift_curves" in data and "epistemic" in data:
            shift_curves = {group_id: {metric: {int(severity): float(value) for severity, value in curve.items()}
                                       for metric, curve in curves.items()}
                            for group_id, curves in data["shift_curves"].items()}
            epistemic = {group_id: {name: EpistemicVerdict.from_dict(verdict) for name, verdict in verdicts.items()}
                         for group_id, verdicts in data["epistemic"].items()}
        else:
            shift_curves, epistemic = derived_group_statistics(groups, ood_sets, dataset_sizes)
        return cls(
            title=data["title"],
            classes=list(data["classes"]),
            ood_sets=ood_sets,
            dataset_sizes=dataset_sizes,
            baseline_method=data["baseline_method"],
            groups=groups,
            curves=[LearningCurve.from_dict(curve) for curve in data["curves"]],
            exchange_rates=[ExchangeRateRow.from_dict(rate) for rate in data["exchange_rates"]],
            worth=[SyntheticWorth.from_dict(worth) for worth in data["worth"]],
            comparisons=[PairedComparison.from_dict(comparison) for comparison in data["comparisons"]],
            generators={name: GeneratorProvenance.from_dict(value) for name, value in data["generators"].items()},
            samples={name: [SampleImage.from_dict(item) for item in items] for name, items in data["samples"].items()},
            headline=Headline.from_dict(data["headline"]),
            shift_curves=shift_curves,
            epistemic=epistemic,
            targeted_curves=[TargetedCurve.from_dict(curve) for curve in data.get("targeted_curves", [])],
            targeted_comparisons=[TargetedComparison.from_dict(item) for item in data.get("targeted_comparisons", [])],
        )


def derived_group_statistics(
    groups: list[GroupSummary], ood_sets: list[str], dataset_sizes: Mapping[str, int]
) -> tuple[dict[str, dict[str, dict[int, float]]], dict[str, dict[str, EpistemicVerdict]]]:
    """Each group's shift curves over severity and, for sampling methods, its epistemic
    verdicts (:mod:`synthaug.study.shift`), by group id; groups without either are left out."""
    shift_curves, epistemic = {}, {}
    for group in groups:
        curves = severity_curves(group.metrics)
        if curves:
            shift_curves[group.group_id] = curves
        if group.has_weight_samples:
            verdicts = epistemic_verdicts(group.metrics, ood_sets, dataset_sizes)
            if verdicts:
                epistemic[group.group_id] = verdicts
    return shift_curves, epistemic

