"""Calibration under dataset shift: every unit's model on corrupted copies of the real test set.

With ``shift: {corruptions: [...], severities: [...]}`` in the study config, the study builds
the real test set under each corruption and severity (:mod:`synthaug.data.shift`), predicts
on each copy with every unit's model, and records a few metrics per copy in the unit's
metrics mapping under ``shift:<corruption>:<severity>:<metric>`` (e.g.
``shift:blur:5:ece``). The report draws them against severity per method, for models trained
on real and on synthetic images (Ovadia et al. 2019: "can you trust your model's uncertainty
under dataset shift?"); :func:`severity_curves` averages them over the corruptions for the
analysis.

:func:`epistemic_verdict` says whether an epistemic score (mutual information) separates OOD
from in-distribution data: its OOD AUROC with a 95 % interval — over seeds when there are
several, and never narrower than the Hanley & McNeil (1982) standard error of one AUROC on
these set sizes — and a flag when the interval reaches 0.5 (chance) or lies below it. An
epistemic estimate at chance is then shown as such, not as a finding.

References:
    Ovadia et al., "Can You Trust Your Model's Uncertainty? Evaluating Predictive
    Uncertainty Under Dataset Shift", NeurIPS 2019.
    Hanley & McNeil, "The Meaning and Use of the Area under a Receiver Operating
    Characteristic (ROC) Curve", Radiology 1982.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from synthaug.data import ImageDataset
    from synthaug.study.stats import Interval

#: The metrics recorded on each shifted test set (those Ovadia et al. 2019 plot, and Brier).
SHIFT_METRICS: tuple[str, ...] = ("accuracy", "nll", "ece", "brier")
#: The metrics the analysis averages over corruptions per severity (the report's three panels).
SEVERITY_METRICS: tuple[str, ...] = ("accuracy", "ece", "nll")
_PREFIX = "shift"
# Below this AUROC an epistemic score is called weak even when its interval excludes chance.
_WEAK_AUROC = 0.7


@dataclass(frozen=True)
class ShiftedSet:
    """One corrupted copy of the test set: which corruption, how severe.

    Attributes:
        corruption: A key of :data:`synthaug.data.shift.CORRUPTIONS`.
        severity: 1 (mild) to 5 (severe).
    """

    corruption: str
    severity: int

    @property
    def name(self) -> str:
        """``shift:<corruption>:<severity>``: the prediction set's name and the metric-key prefix."""
        return f"{_PREFIX}:{self.corruption}:{self.severity}"

    def metric_key(self, metric: str) -> str:
        """``shift:<corruption>:<severity>:<metric>``, the key in a unit's metrics."""
        return f"{self.name}:{metric}"


def parse_shift_metric_key(key: str) -> tuple[ShiftedSet, str] | None:
    """The shifted set and metric of a ``shift:<corruption>:<severity>:<metric>`` key, else ``None``."""
    parts = key.split(":")
    if len(parts) != 4 or parts[0] != _PREFIX or not parts[2].isdigit():
        return None
    return ShiftedSet(parts[1], int(parts[2])), parts[3]


def shifted_sets(corruptions: Sequence[str], severities: Sequence[int]) -> list[ShiftedSet]:
    """Every (corruption, severity) pair, corruption-major."""
    return [ShiftedSet(corruption, severity) for corruption in corruptions for severity in severities]


def shifted_test_sets(
    test: ImageDataset, corruptions: Sequence[str], severities: Sequence[int], seed: int
) -> dict[str, ImageDataset]:
    """The corrupted copies of ``test`` by :attr:`ShiftedSet.name` (cached on disk)."""
    from synthaug.data.shift import corrupt

    return {
        shifted.name: corrupt(test, shifted.corruption, shifted.severity, seed=seed)
        for shifted in shifted_sets(corruptions, severities)
    }


def shift_metrics(name: str, probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """:data:`SHIFT_METRICS` of predictions ``(S, N, C)`` on the shifted set ``name``, keyed
    ``<name>:<metric>``."""
    from synthaug.metrics import evaluate_predictions

    metrics = evaluate_predictions(probs, labels)
    return {f"{name}:{metric}": metrics[metric] for metric in SHIFT_METRICS}


def severity_curves(metrics: Mapping[str, Interval]) -> dict[str, dict[int, float]]:
    """Metric -> severity -> the group's mean averaged over the corruptions; severity 0 is the
    clean test set. Empty when the group has no shifted metrics.

    Args:
        metrics: A group's metrics (``accuracy``, ``shift:blur:5:ece``, ...) with their intervals.
    """
    curves: dict[str, dict[int, float]] = {}
    for metric in SEVERITY_METRICS:
        values: dict[int, list[float]] = {}
        for key, interval in metrics.items():
            parsed = parse_shift_metric_key(key)
            if parsed is not None and parsed[1] == metric:
                values.setdefault(parsed[0].severity, []).append(interval.mean)
        if not values:
            continue
        clean = metrics.get(metric)
        curve = {severity: sum(v) / len(v) for severity, v in sorted(values.items())}
        curves[metric] = {0: clean.mean, **curve} if clean is not None else curve
    return curves


@dataclass(frozen=True)
class EpistemicVerdict:
    """Whether an epistemic score separates OOD from in-distribution data.

    Attributes:
        auroc: Mean OOD AUROC of the score.
        low: Lower end of its 95 % interval.
        high: Upper end.
        status: ``"separates"``, ``"weak"`` (interval above 0.5, mean below 0.7),
            ``"chance"`` (interval contains 0.5) or ``"inverted"`` (interval below 0.5: the
            score is *lower* on OOD data).
    """

    auroc: float
    low: float
    high: float
    status: str

    @property
    def is_finding(self) -> bool:
        """Whether the score may be presented as epistemic uncertainty that detects OOD data."""
        return self.status == "separates"

    def text(self) -> str:
        """``"0.97 [0.96, 0.98]: separates"`` or ``"0.51 [0.47, 0.55]: at chance, not a finding"``."""
        words = {
            "separates": "separates OOD",
            "weak": "weak",
            "chance": "at chance: not a finding",
            "inverted": "lower on OOD than in-distribution: not a finding",
        }[self.status]
        return f"{self.auroc:.2f} [{self.low:.2f}, {self.high:.2f}]: {words}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"auroc": self.auroc, "low": self.low, "high": self.high, "status": self.status}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpistemicVerdict:
        """Inverse of :meth:`to_dict`."""
        return cls(float(data["auroc"]), float(data["low"]), float(data["high"]), str(data["status"]))


def _hanley_mcneil_se(auroc: float, n_positive: int, n_negative: int) -> float:
    """Standard error of one AUROC from ``n_positive`` OOD and ``n_negative`` test examples."""
    q1, q2 = auroc / (2.0 - auroc), 2.0 * auroc**2 / (1.0 + auroc)
    variance = (
        auroc * (1.0 - auroc) + (n_positive - 1) * (q1 - auroc**2) + (n_negative - 1) * (q2 - auroc**2)
    ) / (n_positive * n_negative)
    return math.sqrt(max(variance, 0.0))


def epistemic_verdict(interval: Interval | None, n_ood: int, n_test: int) -> EpistemicVerdict | None:
    """The verdict on an OOD AUROC of mutual information (``None`` when there is none).

    Args:
        interval: The AUROC over seeds (mean and t-interval; no interval with one seed).
        n_ood: Images in the OOD set.
        n_test: Images in the in-distribution test set.
    """
    if interval is None or math.isnan(interval.mean):
        return None
    half_width = 1.96 * _hanley_mcneil_se(interval.mean, max(n_ood, 1), max(n_test, 1))
    low, high = interval.mean - half_width, interval.mean + half_width
    if not math.isnan(interval.low):  # the seeds' interval, where it is the wider one
        low, high = min(low, interval.low), max(high, interval.high)
    if high < 0.5:
        status = "inverted"
    elif low <= 0.5:
        status = "chance"
    elif interval.mean < _WEAK_AUROC:
        status = "weak"
    else:
        status = "separates"
    return EpistemicVerdict(interval.mean, max(low, 0.0), min(high, 1.0), status)


def epistemic_verdicts(
    metrics: Mapping[str, Interval], ood_sets: Sequence[str], dataset_sizes: Mapping[str, int]
) -> dict[str, EpistemicVerdict]:
    """OOD set -> the verdict on a sampling method's mutual-information AUROC there (sets
    without that metric are left out).

    Args:
        metrics: The group's metrics.
        ood_sets: The study's OOD set names.
        dataset_sizes: Images per set (``test``, ``ood:<name>``), as in the analysis.
    """
    verdicts = {}
    for name in ood_sets:
        verdict = epistemic_verdict(metrics.get(f"{name}:ood_auroc_mutual_information"),
                                    dataset_sizes.get(f"ood:{name}", 0), dataset_sizes.get("test", 0))  # fmt: skip
        if verdict is not None:
            verdicts[name] = verdict
    return verdicts
