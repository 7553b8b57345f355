"""Calibration errors (ECE, MCE, classwise ECE) and reliability-diagram data.

Conventions, shared by every function here:

* Top-label calibration scores the confidence ``max_c p(c | x)`` of the *mean* predictive
  (average of the S samples) against whether its arg-max is the label.
* Bins are right-closed, ``(lo, hi]``, as in Guo et al.'s reference code
  (``confidence > lo and confidence <= hi``). A confidence of exactly 1.0 falls in the last
  bin. The first bin is closed on the left too, ``[0, hi]``, so that a probability of exactly
  0 (which only the classwise error can meet) is counted in the first bin instead of being
  dropped.
* ``strategy="uniform"``: edges ``numpy.linspace(0, 1, n_bins + 1)``.
  ``strategy="quantile"``: edges at the ``numpy.quantile`` of the confidences, so bins hold
  (nearly) equal numbers of examples; ties can leave some bins empty.
* Empty bins are skipped: they add nothing to the ECE and are not candidates for the MCE.

Against torchmetrics' ``MulticlassCalibrationError`` the numbers coincide except when a
confidence lies exactly on a bin edge: torchmetrics bins ``[lo, hi)`` and gives a confidence
of exactly 1.0 a bin of its own.

The binning is vectorised (``numpy.searchsorted`` + ``numpy.bincount``), with no Python loop
over bins, so 1,000,000 x 10 predictions take well under a second.

References:
    Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks", ICML 2017.
    Naeini, Cooper and Hauskrecht, "Obtaining Well Calibrated Probabilities Using Bayesian
    Binning", AAAI 2015.
    Kull, Perello-Nieto, Kängsepp, Silva Filho, Song and Flach, "Beyond temperature scaling:
    Obtaining well-calibrated multiclass probabilities with Dirichlet calibration", NeurIPS 2019.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from synthaug.metrics._shapes import as_predictions, check_n_bins, check_strategy, mean_predictive


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Per-bin statistics of top-label confidence against accuracy.

    Attributes:
        bin_edges: ``(n_bins + 1,)`` increasing edges; bin ``b`` is ``(edges[b], edges[b+1]]``.
        bin_confidence: ``(n_bins,)`` mean confidence in each bin, NaN where the bin is empty.
        bin_accuracy: ``(n_bins,)`` fraction correct in each bin, NaN where the bin is empty.
        bin_count: ``(n_bins,)`` int64 number of examples in each bin.
        expected_calibration_error: ``sum_b count_b / N * |accuracy_b - confidence_b|``.
        maximum_calibration_error: ``max_b |accuracy_b - confidence_b|`` over non-empty bins.
        strategy: ``"uniform"`` or ``"quantile"``.
    """

    bin_edges: np.ndarray
    bin_confidence: np.ndarray
    bin_accuracy: np.ndarray
    bin_count: np.ndarray
    expected_calibration_error: float
    maximum_calibration_error: float
    strategy: str


def expected_calibration_error(probs: Any, labels: Any, n_bins: int = 15, strategy: str = "uniform") -> float:
    """Expected calibration error of the top-label confidence of the mean predictive.

    ``ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)|`` over non-empty bins ``B_b``; bins are
    right-closed ``(lo, hi]`` (a confidence of 1.0 is in the last bin, the first bin also
    holds 0). See the module docstring for every convention.

    Args:
        probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.
        labels: Integer class indices ``(N,)``.
        n_bins: Number of bins.
        strategy: ``"uniform"`` (equal-width bins on [0, 1]) or ``"quantile"`` (equal-mass bins).

    Returns:
        ECE in ``[0, 1]``.

    References:
        Guo et al., "On Calibration of Modern Neural Networks", ICML 2017.
    """
    return reliability_diagram(probs, labels, n_bins, strategy).expected_calibration_error


def maximum_calibration_error(probs: Any, labels: Any, n_bins: int = 15, strategy: str = "uniform") -> float:
    """Largest ``|acc(B_b) - conf(B_b)|`` over the non-empty top-label confidence bins.

    Same binning as :func:`expected_calibration_error`.

    Args:
        probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.
        labels: Integer class indices ``(N,)``.
        n_bins: Number of bins.
        strategy: ``"uniform"`` or ``"quantile"``.

    Returns:
        MCE in ``[0, 1]``.

    References:
        Naeini et al., "Obtaining Well Calibrated Probabilities Using Bayesian Binning", AAAI 2015.
    """
    return reliability_diagram(probs, labels, n_bins, strategy).maximum_calibration_error


def classwise_calibration_error(probs: Any, labels: Any, n_bins: int = 15, strategy: str = "uniform") -> float:
    """Classwise ECE: the mean over classes ``c`` of the ECE of ``p(c | x)`` against ``1[y = c]``.

    Every class's probability is binned on its own (same bin conventions as
    :func:`expected_calibration_error`; with ``"quantile"`` each class gets its own edges), so
    it also scores the probabilities given to classes other than the arg-max.

    Args:
        probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.
        labels: Integer class indices ``(N,)``.
        n_bins: Number of bins per class.
        strategy: ``"uniform"`` or ``"quantile"``.

    Returns:
        Classwise ECE in ``[0, 1]``.

    References:
        Kull et al., "Beyond temperature scaling: Obtaining well-calibrated multiclass
        probabilities with Dirichlet calibration", NeurIPS 2019.
    """
    samples, labels = as_predictions(probs, labels)
    return _classwise_calibration_error(
        mean_predictive(samples), labels, check_n_bins(n_bins), check_strategy(strategy)
    )


def reliability_diagram(probs: Any, labels: Any, n_bins: int = 15, strategy: str = "uniform") -> ReliabilityDiagram:
    """Per-bin top-label confidence, accuracy and count, plus the ECE and MCE they give.

    Args:
        probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.
        labels: Integer class indices ``(N,)``.
        n_bins: Number of bins.
        strategy: ``"uniform"`` or ``"quantile"``.

    Returns:
        A :class:`ReliabilityDiagram`; draw it with
        :class:`synthaug.metrics.plots.ReliabilityDisplay`.

    References:
        Guo et al., "On Calibration of Modern Neural Networks", ICML 2017.
    """
    samples, labels = as_predictions(probs, labels)
    return _reliability_diagram(mean_predictive(samples), labels, check_n_bins(n_bins), check_strategy(strategy))


def top_label_confidence(mean_probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``(N,)`` top-label confidence and the ``(N,)`` bool "arg-max is the label"."""
    predicted = mean_probs.argmax(axis=-1)
    confidences = np.take_along_axis(mean_probs, predicted[:, np.newaxis], axis=-1)[:, 0]
    return confidences, predicted == labels


@dataclass(frozen=True)
class TopLabelBins:
    """Each example's top-label confidence, hit and uniform bin, from which the accuracy and ECE
    of any resample of the examples follow without touching the ``(N, C)`` probabilities again
    (a bootstrap over test examples computes them thousands of times: ``study/groups.py``).

    Build it with :meth:`of`; :meth:`accuracy` and :meth:`expected_calibration_error` of rows
    ``r`` equal :func:`~synthaug.metrics.accuracy` and :func:`expected_calibration_error` of
    ``probs[:, r]``, ``labels[r]`` (same sums in the same order).
    """

    confidences: np.ndarray  # (N,) float64
    hits: np.ndarray  # (N,) bool: the arg-max is the label
    bin_index: np.ndarray  # (N,) uniform right-closed bin of each confidence
    n_bins: int

    @classmethod
    def of(cls, probs: Any, labels: Any, n_bins: int = 15) -> TopLabelBins:
        """From probabilities ``(S, N, C)`` or ``(N, C)`` (their mean predictive) and labels ``(N,)``."""
        samples, labels = as_predictions(probs, labels)
        n_bins = check_n_bins(n_bins)
        confidences, hits = top_label_confidence(mean_predictive(samples), labels)
        confidences = confidences.astype(np.float64, copy=False)
        return cls(confidences, hits, _bin_index(confidences, _bin_edges(confidences, n_bins, "uniform")), n_bins)

    def accuracy(self, rows: np.ndarray | slice = slice(None)) -> float:
        """Share of ``rows`` whose arg-max is the label."""
        return float(np.mean(self.hits[rows]))

    def expected_calibration_error(self, rows: np.ndarray | slice = slice(None)) -> float:
        """ECE of ``rows`` (uniform bins)."""
        confidences = self.confidences[rows]
        _, confidence_sums, hit_sums = _binned_sums(confidences, self.hits[rows], self.bin_index[rows], self.n_bins)
        return float(np.abs(hit_sums - confidence_sums).sum() / confidences.shape[0])


def _bin_edges(confidences: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    return np.quantile(confidences, np.linspace(0.0, 1.0, n_bins + 1))


def _bin_index(confidences: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Index of the right-closed bin ``(edges[b], edges[b+1]]`` each confidence falls in.

    Searching the interior edges with ``side="left"`` puts a value equal to an edge in the bin
    that edge closes, values at or below the first edge in bin 0 and values at or above the
    last edge in the last bin.
    """
    return np.searchsorted(edges[1:-1], confidences, side="left")


def _binned_sums(
    confidences: np.ndarray, hits: np.ndarray, bin_index: np.ndarray, n_total_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin example count, summed confidence and summed hits (``np.bincount``, no bin loop)."""
    counts = np.bincount(bin_index, minlength=n_total_bins)
    confidence_sums = np.bincount(bin_index, weights=confidences, minlength=n_total_bins)
    hit_sums = np.bincount(bin_index, weights=hits, minlength=n_total_bins)
    return counts, confidence_sums, hit_sums


def _reliability_diagram(mean_probs: np.ndarray, labels: np.ndarray, n_bins: int, strategy: str) -> ReliabilityDiagram:
    confidences, hits = top_label_confidence(mean_probs, labels)
    confidences = confidences.astype(np.float64, copy=False)
    edges = _bin_edges(confidences, n_bins, strategy)
    counts, confidence_sums, hit_sums = _binned_sums(confidences, hits, _bin_index(confidences, edges), n_bins)
    occupied = counts > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        bin_confidence = np.where(occupied, confidence_sums / counts, np.nan)
        bin_accuracy = np.where(occupied, hit_sums / counts, np.nan)
    # count_b * |acc_b - conf_b| = |hits_b - confidence_sum_b|, so no division is needed.
    ece = float(np.abs(hit_sums - confidence_sums).sum() / confidences.shape[0])
    mce = float(np.abs(bin_accuracy[occupied] - bin_confidence[occupied]).max())
    return ReliabilityDiagram(
        bin_edges=edges,
        bin_confidence=bin_confidence,
        bin_accuracy=bin_accuracy,
        bin_count=counts.astype(np.int64),
        expected_calibration_error=ece,
        maximum_calibration_error=mce,
        strategy=strategy,
    )


def _classwise_calibration_error(mean_probs: np.ndarray, labels: np.ndarray, n_bins: int, strategy: str) -> float:
    n_examples, n_classes = mean_probs.shape
    class_probs = mean_probs.astype(np.float64, copy=False)
    if strategy == "uniform":
        bin_index = _bin_index(class_probs, _bin_edges(class_probs, n_bins, strategy))
    else:
        # One quantile per class and bin edge: a loop over the C classes, never over bins.
        bin_index = np.empty(class_probs.shape, dtype=np.intp)
        for class_index in range(n_classes):
            column = class_probs[:, class_index]
            bin_index[:, class_index] = _bin_index(column, _bin_edges(column, n_bins, strategy))
    # Offset every class's bins so that one bincount covers all C x n_bins bins.
    bin_index = bin_index + np.arange(n_classes) * n_bins
    n_total_bins = n_classes * n_bins
    confidence_sums = np.bincount(bin_index.ravel(), weights=class_probs.ravel(), minlength=n_total_bins)
    # Each example is a hit in exactly one class, its label's, so the hits per bin are the
    # label bins' counts (cheaper than weighting by a C-column one-hot matrix).
    hit_sums = np.bincount(bin_index[np.arange(n_examples), labels], minlength=n_total_bins)
    return float(np.abs(hit_sums - confidence_sums).sum() / (n_examples * n_classes))
