"""Entropy decomposition of predictive uncertainty from probability samples.

For samples ``p_s(y | x)``, ``s = 1..S``, of a Bayesian posterior, an ensemble or MC dropout:

* total: ``H[ 1/S sum_s p_s ]`` (:func:`predictive_entropy`),
* aleatoric: ``1/S sum_s H[p_s]`` (:func:`expected_entropy`),
* epistemic: their difference, the mutual information between the label and the model
  parameters (:func:`mutual_information`).

All in nats, per example, with ``0 ln 0 = 0``. With ``S = 1`` the mutual information is 0.

References:
    Depeweg, Hernández-Lobato, Doshi-Velez and Udluft, "Decomposition of Uncertainty in
    Bayesian Deep Learning for Efficient and Risk-sensitive Learning", ICML 2018.
    Gal, "Uncertainty in Deep Learning", PhD thesis, University of Cambridge, 2016 (sec. 3.3.1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthaug.metrics._shapes import as_probability_samples, mean_predictive, sum_over_classes


def predictive_entropy(probs: Any) -> np.ndarray:
    """Entropy of the mean predictive distribution (total uncertainty), per example.

    Args:
        probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.

    Returns:
        ``(N,)`` float64 entropies in nats, in ``[0, ln C]``.
    """
    return _predictive_entropy(mean_predictive(as_probability_samples(probs)))


def expected_entropy(probs: Any) -> np.ndarray:
    """Mean over samples of each sample's entropy (aleatoric uncertainty), per example.

    Args:
        probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.

    Returns:
        ``(N,)`` float64 entropies in nats, in ``[0, ln C]``.
    """
    return _expected_entropy(as_probability_samples(probs))


def mutual_information(probs: Any) -> np.ndarray:
    """Mutual information between label and model (epistemic uncertainty), per example.

    ``MI = predictive_entropy - expected_entropy``. It is non-negative by Jensen's inequality;
    round-off below zero is clipped to 0.

    Args:
        probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.

    Returns:
        ``(N,)`` float64 values in nats, in ``[0, ln min(S, C)]``.

    References:
        Houlsby, Huszár, Ghahramani and Lengyel, "Bayesian Active Learning for Classification
        and Preference Learning", 2011 (BALD).
    """
    samples = as_probability_samples(probs)
    return _mutual_information(samples, _predictive_entropy(mean_predictive(samples)))


def _entropy(probs: np.ndarray) -> np.ndarray:
    """``-sum_c p_c ln p_c`` over the last axis, with ``0 ln 0 = 0``, as float64.

    Written out rather than with ``scipy.special.entr`` because numpy's vectorised log makes
    this about three times faster on float32 samples. Flooring at the dtype's smallest normal
    number makes ``p = 0`` contribute ``0 * ln(tiny) = 0``.
    """
    log_probs = np.log(np.maximum(probs, np.finfo(probs.dtype).tiny))
    log_probs *= probs
    return -sum_over_classes(log_probs).astype(np.float64)


def _predictive_entropy(mean_probs: np.ndarray) -> np.ndarray:
    return _entropy(mean_probs)


def _expected_entropy(samples: np.ndarray) -> np.ndarray:
    return _entropy(samples).mean(axis=0)


def _mutual_information(samples: np.ndarray, total_entropy: np.ndarray) -> np.ndarray:
    if samples.shape[0] == 1:
        return np.zeros(samples.shape[1])
    return np.maximum(total_entropy - _expected_entropy(samples), 0.0)
