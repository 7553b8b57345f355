"""A study's results as small frozen records; ``results.jsonl`` and ``analysis.json`` are
their serialisation.

- :class:`UnitResult`: one finished unit (regime x size x backbone x method x seed), one line
  of ``results.jsonl``.
- :class:`GroupKey`: what a group of units shares (every seed of one regime x size x backbone x
  method); its :attr:`~GroupKey.group_id` is the one place the readable id is built.
- :class:`GroupSummary`, :class:`LearningCurve`, :class:`ExchangeRateRow`,
  :class:`SyntheticWorth`, :class:`PairedComparison`, :class:`Headline`: the parts of
  ``analysis.json``, gathered in :class:`StudyAnalysis`.

Every record is a :class:`~synthaug.study.codec.Record`: one generic ``to_dict`` (plain data,
the JSON keys files have always used) and ``from_dict``. Keys added after the first release
(``treatment``, ``audit``) are optional when reading, so run folders written before them
still load and resume. Keys a record does not know are ignored, so a log written by a newer
synthaug still reads. Hand-written codecs remain only where a file flattens a record on
purpose (a results row and a group summary carry their group key at the top level).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from synthaug.study.analysis_records import (
    AugmentationComparison,
    BootstrapInterval,
    ComparisonKind,
    DataKind,
    ExchangeRateRow,
    GeneratorProvenance,
    Headline,
    Histogram,
    LearningCurve,
    MainSetting,
    MetricDifference,
    PairedComparison,
    ReliabilityBins,
    SampleImage,
    SyntheticWorth,
    TargetedComparison,
    TargetedCurve,
    make_group_id,
)
from synthaug.study.codec import Record, record_from_dict, record_to_dict
from synthaug.study.literature import literature_dict
from synthaug.study.shift import EpistemicVerdict, epistemic_verdicts, severity_curves
from synthaug.study.stats import Interval

__all__ = [
    "AugmentationComparison",
    "BootstrapInterval",
    "ComparisonKind",
    "DataKind",
    "ExchangeRateRow",
    "GeneratorProvenance",
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
    "UnitResult",
    "derived_group_statistics",
    "make_group_id",
]


@dataclass(frozen=True)
class GroupKey(Record):
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
        augment: The classical augmentation its method trained with
            (:func:`~synthaug.study.config_regimes.augment_label`; ``"none"`` in logs written
            before regimes took ``augment``). Regime names are unique, so the group id needs no
            part of it.
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
    augment: str = "none"

    @property
    def group_id(self) -> str:
        """Readable id of the group (see :func:`make_group_id`)."""
        return make_group_id(self.regime, self.size, self.backbone, self.method)


@dataclass(frozen=True)
class UnitResult(Record):
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
        params_key: Hash of the unit's resolved parameters (defaults included; see
            :func:`synthaug.study.units.resolved_params`): what the row was computed with, so a
            resume under other defaults is refused. ``None`` in logs written before it existed.
        threads: torch CPU threads the unit ran with (``None`` in older logs).
        under_trained: Whether the validation loss was still improving at the last epoch of
            training (of any network the method trained: an ensemble member counts), i.e. more
            steps would likely have helped (``TrainingHistory.under_trained``); ``None`` when
            unknown (older logs, a method that trains no network).
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
    params_key: str | None = None
    threads: int | None = None
    under_trained: bool | None = None

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
            **({"params_key": self.params_key} if self.params_key is not None else {}),
            **({"threads": self.threads} if self.threads is not None else {}),
            **({"under_trained": self.under_trained} if self.under_trained is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnitResult:
        """A results row as read back from ``results.jsonl`` (any version of it: ``audit``,
        ``targeted``, ``params_key`` and ``threads`` are absent from rows written before they existed)."""
        return record_from_dict(cls, {**data, "key": data})


@dataclass(frozen=True)
class GroupSummary(Record):
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
        under_trained: How many of its units were still improving at their last epoch
            (:attr:`UnitResult.under_trained`); 0 in files written before it was counted.
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
    under_trained: int = 0

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
        data = record_to_dict(self)
        return {"group_id": self.group_id, **data.pop("key"), **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupSummary:
        """Inverse of :meth:`to_dict`."""
        return record_from_dict(cls, {**data, "key": data})


@dataclass(frozen=True)
class StudyAnalysis(Record):
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
        augmentation: Generated images against and on top of classical augmentation, per real
            size, source, backbone and method (only studies that ran a classical policy).
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
    augmentation: list[AugmentationComparison] = field(default_factory=list)
    _by_id: dict[str, GroupSummary] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {group.group_id: group for group in self.groups})

    def group(self, group_id: str) -> GroupSummary | None:
        """The group with id ``group_id`` (``None`` when the study has no such group)."""
        return self._by_id.get(group_id)

    def to_dict(self) -> dict[str, Any]:
        """The contents of ``analysis.json``."""
        # The literature is quoted for whoever reads the JSON alone; the report takes it from
        # synthaug.study.literature, so a folder written before it was a record renders too.
        return {**record_to_dict(self), "literature": literature_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudyAnalysis:
        """Inverse of :meth:`to_dict` (``literature`` is not part of the record).

        A file written before the shift curves and epistemic verdicts were saved gets them
        computed from its groups (:func:`derived_group_statistics`); one written before the
        targeted records has none (:func:`synthaug.study.analysis.read_analysis` adds them).
        """
        analysis = record_from_dict(cls, data)
        if "shift_curves" in data and "epistemic" in data:
            return analysis
        shift_curves, epistemic = derived_group_statistics(analysis.groups, analysis.ood_sets, analysis.dataset_sizes)
        return dataclasses.replace(analysis, shift_curves=shift_curves, epistemic=epistemic)


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
