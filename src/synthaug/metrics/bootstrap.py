"""Bootstrap confidence intervals for any metric of (probabilities, labels): percentile, or
basic (pivotal) for a biased statistic such as binned ECE."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal, NamedTuple

import numpy as np

from synthaug.errors import ConfigError
from synthaug.metrics._shapes import as_predictions


class ConfidenceInterval(NamedTuple):
    """A point estimate and the two ends of its confidence interval."""

    point: float
    low: float
    high: float


def bootstrap_ci(
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    probs: Any,
    labels: Any,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    method: Literal["percentile", "basic"] = "percentile",
) -> ConfidenceInterval:
    """Bootstrap interval of ``metric_fn(probs, labels)`` over test examples.

    Examples (axis N) are drawn with replacement, keeping all S samples of each drawn
    example together with its label; the percentile interval is the ``(1 - confidence) / 2``
    and ``(1 + confidence) / 2`` quantiles of the metric over the resamples, the basic one
    those quantiles reflected about the point (:func:`basic_interval`). The same seed gives
    the same interval.

    The loop is written here rather than with ``scipy.stats.bootstrap`` because the
    probabilities must be resampled along their middle axis, jointly with the labels, and one
    resample at a time keeps memory at the size of one copy of the input.

    Args:
        metric_fn: Any metric taking ``(probs (S, N, C), labels (N,))`` and returning a float,
            e.g. :func:`synthaug.metrics.expected_calibration_error`.
        probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.
        labels: Integer class indices ``(N,)``.
        n_resamples: Number of bootstrap resamples.
        confidence: Coverage of the interval, in ``(0, 1)``.
        seed: Seed of the resampling generator.
        method: ``percentile``, or ``basic`` for a statistic biased on small samples.

    Returns:
        ``ConfidenceInterval(point, low, high)``; ``point`` is the metric on all examples.

    References:
        Efron and Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall 1993 (ch. 13).
    """
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ConfigError(f"n_resamples: expected a positive integer, got {n_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence: expected a level strictly between 0 and 1 (e.g. 0.95), got {confidence!r}")
    if method not in ("percentile", "basic"):
        raise ConfigError(f"method: expected 'percentile' or 'basic', got {method!r}")
    samples, labels = as_predictions(probs, labels)
    draws = resample_indices(len(labels), n_resamples, seed)
    statistics = [metric_fn(samples[:, drawn], labels[drawn]) for drawn in draws]
    point = float(metric_fn(samples, labels))
    if method == "basic":
        low, high = basic_interval(statistics, point, confidence)
    else:
        low, high = percentile_interval(statistics, confidence)
    return ConfidenceInterval(point=point, low=low, high=high)


def resample_indices(n_examples: int, n_resamples: int, seed: int = 0) -> Iterator[np.ndarray]:
    """The example indices of each bootstrap resample (drawn with replacement), as
    :func:`bootstrap_ci` draws them: a caller with a faster form of its metric (e.g. per-example
    statistics computed once) gets the same resamples, hence the same interval."""
    generator = np.random.default_rng(seed)
    for _ in range(n_resamples):
        yield generator.integers(0, n_examples, size=n_examples)


def percentile_interval(statistics: Any, confidence: float = 0.95) -> tuple[float, float]:
    """The ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of resampled statistics."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.asarray(statistics, dtype=np.float64), [tail, 1.0 - tail])
    return float(low), float(high)


def basic_interval(statistics: Any, point: float, confidence: float = 0.95) -> tuple[float, float]:
    """The basic (pivotal) bootstrap interval: ``2 * point`` minus the upper and lower quantiles.

    For a statistic whose resamples overshoot it, the percentile interval sits above the
    estimate; binned ECE is one (a resample repeats examples, so its bins look less calibrated
    than the set's: for a calibrated model on 500 examples the percentile interval runs from
    about 0.8 to 1.8 times the estimate, far from the true value, 0). Reflecting the quantiles
    about the point shifts the interval down by the bias the resamples show; Kumar, Liang & Ma
    (NeurIPS 2019, "Verified Uncertainty Calibration") give calibration errors this interval.
    The estimate itself can then lie above it: the interval is for the calibration error, which
    the binned estimate overstates. (Near 0, a boundary of the error, no bootstrap interval is
    exact: the basic one still often stops short of 0 for a calibrated model.)
    """
    quantile_low, quantile_high = percentile_interval(statistics, confidence)
    return 2.0 * point - quantile_high, 2.0 * point - quantile_low
