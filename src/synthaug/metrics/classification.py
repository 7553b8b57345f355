"""Accuracy, negative log-likelihood and Brier score of the mean predictive distribution.

All three read probability samples ``(S, N, C)`` (or ``(N, C)``, read as ``S = 1``) and score
the *mean* predictive ``p(y | x) = 1/S sum_s p_s(y | x)``, the quantity a Bayesian model
average or an ensemble predicts with.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthaug.metrics._shapes import as_predictions, mean_predictive

# Probabilities are floored here before the logarithm so that one confidently wrong
# prediction costs at most -ln(1e-12) ~= 27.6 nats instead of infinity. A fixed floor (not
# the dtype's own epsilon) keeps float32 and float64 inputs giving the same number.
PROBABILITY_FLOOR = 1e-12


def accuracy(probs: Any, labels: Any) -> float:
    """Fraction of examples whose most probable class under the mean predictive is the label.

    Args:
        probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.
        labels: Integer class indices ``(N,)``.

    Returns:
        Accuracy in ``[0, 1]``. Ties between classes go to the lowest class index.
    """
    samples, labels = as_predictions(probs, labels)
    return _accuracy(mean_predictive(samples), labels)


def negative_log_likelihood(probs: Any, labels: Any) -> float:
    """Mean negative log-likelihood of the labels under the mean predictive, in nats.

    ``NLL = -1/N sum_n ln max(p(y_n | x_n), 1e-12)``; the floor (``PROBABILITY_FLOOR``) caps
    the cost of a probability of exactly zero at about 27.6 nats.

    Args:
        probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.
        labels: Integer class indices ``(N,)``.

    Returns:
        Mean NLL in nats (0 is perfect).

    References:
        Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks", ICML 2017.
    """
    samples, labels = as_predictions(probs, labels)
    return _negative_log_likelihood(mean_predictive(samples), labels)


def brier_score(probs: Any, labels: Any) -> float:
    """Mean over examples of the summed squared error between mean predictive and one-hot label.

    ``Brier = 1/N sum_n sum_c (p(c | x_n) - 1[c = y_n])^2``, in ``[0, 2]`` (Brier's original
    multi-class form, not divided by C).

    Args:
        probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.
        labels: Integer class indices ``(N,)``.

    Returns:
        Brier score (0 is perfect).

    References:
        Brier, "Verification of Forecasts Expressed in Terms of Probability", Monthly Weather
        Review 1950.
    """
    samples, labels = as_predictions(probs, labels)
    return _brier_score(mean_predictive(samples), labels)


def _label_probabilities(mean_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(N,)`` float64 probability the ``(N, C)`` mean predictive gives each true label."""
    return mean_probs[np.arange(labels.shape[0]), labels].astype(np.float64)


def _accuracy(mean_probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(mean_probs.argmax(axis=-1) == labels))


def _negative_log_likelihood(mean_probs: np.ndarray, labels: np.ndarray) -> float:
    label_probs = _label_probabilities(mean_probs, labels)
    return float(-np.mean(np.log(np.maximum(label_probs, PROBABILITY_FLOOR))))


def _brier_score(mean_probs: np.ndarray, labels: np.ndarray) -> float:
    # sum_c (p_c - 1[c=y])^2 = sum_c p_c^2 - 2 p_y + 1, which avoids building the one-hot
    # matrix; the mean over examples only needs the total sum of squares.
    sum_of_squares = np.einsum("nc,nc->", mean_probs, mean_probs, dtype=np.float64)
    label_probs = _label_probabilities(mean_probs, labels)
    return float((sum_of_squares - 2.0 * label_probs.sum()) / labels.shape[0] + 1.0)
