"""Calibration under dataset shift: every unit's model on corrupted copies of the real test set.

With ``shift: {corruptions: [...], severities: [...]}`` in the study config, the study builds
the real test set under each corruption and severity (:mod:`synthaug.data.shift`), predicts
on each copy with every unit's model, and records a few metrics per copy in the unit's
metrics mapping under ``shift:<corruption>:<severity>:<metric>`` (e.g.
``shift:blur:5:ece``). The report draws them against severity per method, for models trained
on real and on synthetic images (Ovadia et al. 2019: "can you trust your model's uncertainty
under dataset shift?").

References:
    Ovadia et al., "Can You Trust Your Model's Uncertainty? Evaluating Predictive
    Uncertainty Under Dataset Shift", NeurIPS 2019.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from synthaug.data import ImageDataset

#: The metrics recorded on each shifted test set (those Ovadia et al. 2019 plot, and Brier).
SHIFT_METRICS: tuple[str, ...] = ("accuracy", "nll", "ece", "brier")
_PREFIX = "shift"


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
