"""Selective prediction: the risk-coverage curve and the area under it (AURC).

A selective classifier answers only when its confidence, the top-label probability of the
mean predictive, reaches a threshold. Lowering the threshold raises the coverage (fraction
answered) and usually the risk (error rate among the answered). A good uncertainty estimate
answers its mistakes last, which gives a low curve.

Ties: examples with equal confidence are accepted or rejected together, so the curve has one
point per distinct confidence and the AURC does not depend on how tied examples happen to be
ordered. Without ties the AURC equals the usual ``1/N sum_k risk(k)`` over the ``k`` most
confident examples.

References:
    Geifman and El-Yaniv, "Selective Classification for Deep Neural Networks", NeurIPS 2017.
    Geifman, Uziel and El-Yaniv, "Bias-Reduced Uncertainty Estimation for Deep Neural
    Classifiers", ICLR 2019 (the AURC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from synthaug.metrics._shapes import as_predictions, mean_predictive
from synthaug.metrics.calibration import top_label_confidence


@dataclass(frozen=True)
class RiskCoverageCurve:
    """Risk against coverage, one point per distinct confidence, coverage increasing.

    Attributes:
        coverage: ``(K,)`` fraction of examples whose confidence is ``>= threshold``.
        risk: ``(K,)`` error rate among those examples.
        threshold: ``(K,)`` confidence thresholds, decreasing.
    """

    coverage: np.ndarray
    risk: np.ndarray
    threshold: np.ndarray


def risk_coverage_curve(probs: Any, labels: Any) -> RiskCoverageCurve:
    """Risk-coverage curve of the top-label confidence of the mean predictive.

    Args:
        probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.
        labels: Integer class indices ``(N,)``.

    Returns:
        A :class:`RiskCoverageCurve`; its last point has coverage 1 and risk ``1 - accuracy``.

    References:
        Geifman and El-Yaniv, "Selective Classification for Deep Neural Networks", NeurIPS 2017.
    """
    samples, labels = as_predictions(probs, labels)
    return _risk_coverage_curve(mean_predictive(samples), labels)


def aurc(probs: Any, labels: Any) -> float:
    """Area under the risk-coverage curve (lower is better).

    ``AURC = sum_j risk_j * (coverage_j - coverage_{j-1})`` over the points of
    :func:`risk_coverage_curve`, i.e. the mean over examples of the risk at the coverage where
    each is first accepted.

    Args:
        probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.
        labels: Integer class indices ``(N,)``.

    Returns:
        AURC in ``[0, 1]``.

    References:
        Geifman, Uziel and El-Yaniv, "Bias-Reduced Uncertainty Estimation for Deep Neural
        Classifiers", ICLR 2019.
    """
    samples, labels = as_predictions(probs, labels)
    return _aurc(mean_predictive(samples), labels)


def _risk_coverage_curve(mean_probs: np.ndarray, labels: np.ndarray) -> RiskCoverageCurve:
    confidences, hits = top_label_confidence(mean_probs, labels)
    # Any order works, stable or not: only the ends of runs of equal confidence are read.
    order = np.argsort(-confidences)
    sorted_confidences = confidences[order].astype(np.float64)
    cumulative_errors = np.cumsum(~hits[order])
    # The last example of each run of equal confidences closes one point of the curve.
    group_ends = np.flatnonzero(np.append(sorted_confidences[1:] != sorted_confidences[:-1], True))
    accepted = group_ends + 1
    return RiskCoverageCurve(
        coverage=accepted / confidences.shape[0],
        risk=cumulative_errors[group_ends] / accepted,
        threshold=sorted_confidences[group_ends],
    )


def _aurc(mean_probs: np.ndarray, labels: np.ndarray) -> float:
    curve = _risk_coverage_curve(mean_probs, labels)
    coverage_steps = np.diff(curve.coverage, prepend=0.0)
    return float(np.sum(curve.risk * coverage_steps))
