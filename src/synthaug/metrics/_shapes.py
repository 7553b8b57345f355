"""Input normalisation shared by every metric.

Every metric accepts probability samples of shape ``(S, N, C)`` or ``(N, C)`` (read as
``S = 1``), as a numpy array or a torch tensor, plus integer labels ``(N,)``. This module turns
them into numpy arrays, checks them once and raises a one-line :class:`~synthaug.errors.DataError`
(bad data) or :class:`~synthaug.errors.ConfigError` (bad option) naming what is wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from synthaug.errors import ConfigError, DataError

# Rows of a probability matrix must sum to one within this tolerance (or C times the input
# dtype's machine epsilon, if larger, for half precision); loose enough for rounding, tight
# enough to catch logits or unnormalised scores.
ROW_SUM_TOLERANCE = 1e-3

BINNING_STRATEGIES = ("uniform", "quantile")


def to_numpy(array: Any, name: str) -> np.ndarray:
    """Return ``array`` (numpy array, torch tensor or nested sequence) as a numpy array.

    CPU tensors are shared, not copied. Half-precision tensors are widened to float32 because
    numpy has no bfloat16.
    """
    if isinstance(array, torch.Tensor):
        tensor = array.detach()
        if tensor.dtype in (torch.float16, torch.bfloat16):
            tensor = tensor.float()
        return tensor.cpu().numpy()
    try:
        return np.asarray(array)
    except (TypeError, ValueError) as error:
        raise DataError(
            f"{name}: cannot be read as an array ({error}); pass a numpy array or a torch tensor"
        ) from error


def as_probability_samples(probs: Any, name: str = "probs") -> np.ndarray:
    """Return ``probs`` as a validated ``(S, N, C)`` floating numpy array.

    Args:
        probs: Probabilities of shape ``(S, N, C)`` or ``(N, C)`` (read as ``S = 1``).
        name: How to refer to the array in error messages.

    Raises:
        DataError: wrong rank, no examples or classes, a non-numeric dtype, values outside
            ``[0, 1]`` (NaN and infinity included) or rows that do not sum to one.
    """
    input_epsilon = _machine_epsilon(probs)
    samples = to_numpy(probs, name)
    if samples.ndim == 2:
        samples = samples[np.newaxis]
    if samples.ndim != 3:
        raise DataError(
            f"{name}: expected probabilities of shape (S, N, C) or (N, C), got shape {samples.shape}"
        )
    if samples.dtype == np.bool_ or not (
        np.issubdtype(samples.dtype, np.floating) or np.issubdtype(samples.dtype, np.integer)
    ):
        raise DataError(f"{name}: expected real-valued probabilities, got dtype {samples.dtype}")
    if not np.issubdtype(samples.dtype, np.floating):
        samples = samples.astype(np.float64)
    elif samples.dtype == np.float16:
        samples = samples.astype(np.float32)
    n_samples, n_examples, n_classes = samples.shape
    if n_samples == 0 or n_examples == 0 or n_classes < 2:
        raise DataError(
            f"{name}: need at least one sample, one example and two classes, got shape {samples.shape}"
        )
    # min/max propagate NaN, so these two reductions also reject NaN and +-inf.
    smallest, largest = samples.min(), samples.max()
    if not (smallest >= 0.0 and largest <= 1.0):
        raise DataError(
            f"{name}: probabilities must lie in [0, 1] and be finite, found values in "
            f"[{smallest}, {largest}]; apply a softmax to logits first"
        )
    worst = float(np.abs(sum_over_classes(samples) - 1.0).max())
    if worst > max(ROW_SUM_TOLERANCE, n_classes * input_epsilon):
        raise DataError(
            f"{name}: each row over the C={n_classes} classes must sum to 1, one is off by {worst:.3g}; "
            "apply a softmax to logits first"
        )
    return samples


def sum_over_classes(array: np.ndarray) -> np.ndarray:
    """Sum ``array`` over its last axis (classes), keeping its dtype.

    A matrix-vector product with ones on a 2-D view is several times faster than
    ``.sum(axis=-1)`` over a short last axis (and a stacked 3-D product is slower again).
    """
    n_classes = array.shape[-1]
    return (array.reshape(-1, n_classes) @ np.ones(n_classes, dtype=array.dtype)).reshape(array.shape[:-1])


def _machine_epsilon(array: Any) -> float:
    """Machine epsilon of a floating tensor's or array's own dtype (0 for anything else)."""
    if isinstance(array, torch.Tensor):
        return torch.finfo(array.dtype).eps if array.dtype.is_floating_point else 0.0
    dtype = getattr(array, "dtype", None)
    return float(np.finfo(dtype).eps) if dtype is not None and np.issubdtype(dtype, np.floating) else 0.0


def as_labels(labels: Any, n_examples: int, n_classes: int, name: str = "labels") -> np.ndarray:
    """Return ``labels`` as a validated int64 ``(N,)`` numpy array with values in ``[0, C)``.

    Raises:
        DataError: wrong shape, a non-integer dtype, or a label outside ``[0, n_classes)``.
    """
    array = to_numpy(labels, name)
    if array.ndim != 1 or array.shape[0] != n_examples:
        raise DataError(f"{name}: expected shape ({n_examples},) to match the probabilities, got {array.shape}")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{name}: expected integer class indices, got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if array.min() < 0 or array.max() >= n_classes:
        raise DataError(
            f"{name}: class indices must lie in [0, {n_classes}), found values in [{array.min()}, {array.max()}]"
        )
    return array


def as_predictions(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (probabilities, labels) pair: ``(S, N, C)`` samples and int64 ``(N,)`` labels."""
    samples = as_probability_samples(probs)
    return samples, as_labels(labels, samples.shape[1], samples.shape[2])


def mean_predictive(samples: np.ndarray) -> np.ndarray:
    """Average ``(S, N, C)`` samples over S into the ``(N, C)`` mean predictive distribution.

    The dtype is kept (float32 averages of S values are accurate to ~1e-7, far below any
    metric's resolution) and with ``S = 1`` the single sample is returned without a copy.
    """
    if samples.shape[0] == 1:
        return samples[0]
    return samples.mean(axis=0)


def as_scores(scores: Any, name: str) -> np.ndarray:
    """Return per-example scores as a finite float64 ``(N,)`` array with ``N >= 1``."""
    array = to_numpy(scores, name)
    if array.ndim != 1 or array.shape[0] == 0:
        raise DataError(f"{name}: expected a non-empty 1-D array of per-example scores, got shape {array.shape}")
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise DataError(f"{name}: expected real-valued scores, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise DataError(f"{name}: scores must be finite, found NaN or infinity")
    return array


def check_n_bins(n_bins: Any) -> int:
    """Return ``n_bins`` if it is a positive integer, else raise ConfigError."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ConfigError(f"n_bins: expected a positive integer, got {n_bins!r}")
    return int(n_bins)


def check_strategy(strategy: Any) -> str:
    """Return ``strategy`` if it is a known binning strategy, else raise ConfigError."""
    if strategy not in BINNING_STRATEGIES:
        raise ConfigError(f"strategy: expected one of {', '.join(BINNING_STRATEGIES)}, got {strategy!r}")
    return strategy
