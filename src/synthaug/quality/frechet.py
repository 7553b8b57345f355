"""Fréchet distance between two sets of feature vectors, each summarised as a Gaussian.

``FD = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))``: the 2-Wasserstein distance
between the Gaussians with the sets' means and covariances. With Inception-v3 pool features
this is the FID of Heusel et al.; synthaug computes it in whatever space it is given (a
classifier trained on the real data, CLIP image embeddings) and always names that space,
because numbers from different spaces are not comparable, and none of them is an FID.

The trace of the matrix square root is computed as ``Tr((S_r^(1/2) S_g S_r^(1/2))^(1/2))``
(the same trace, since ``S_r S_g`` is similar to that symmetric matrix), from two symmetric
eigendecompositions: no complex parts to discard and no ``sqrtm`` convergence warnings when a
covariance is singular. With fewer images than dimensions (the rule per class) the same trace is
the sum of the singular values of an images-by-images matrix (see the code), which keeps the
repeated equal-size draws of :mod:`synthaug.quality.baseline` cheap in 1,024-pixel spaces.

References:
    Fréchet, "Sur la distance de deux lois de probabilité", C. R. Acad. Sci. Paris 244, 1957.
    Dowson & Landau, "The Fréchet distance between multivariate normal distributions",
    J. Multivariate Analysis 12, 1982.
    Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter, "GANs Trained by a Two Time-Scale
    Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017 (FID).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthaug.errors import DataError

__all__ = ["frechet_distance"]


def _symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues are 0)."""
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(real_features: Any, fake_features: Any) -> float:
    """Fréchet distance between Gaussians fitted to ``real_features (N, D)`` and ``fake_features (M, D)``.

    Covariances are the unbiased sample covariances (divided by N - 1), as in FID code.

    Raises:
        DataError: not 2-D, different dimensions, fewer than 2 vectors, or non-finite values.
    """
    real = np.asarray(real_features, dtype=np.float64)
    fake = np.asarray(fake_features, dtype=np.float64)
    for name, features in (("real_features", real), ("fake_features", fake)):
        if features.ndim != 2 or len(features) < 2:
            raise DataError(f"{name}: need at least 2 feature vectors as a 2-D array, got shape {features.shape}")
        if not np.isfinite(features).all():
            raise DataError(f"{name}: feature vectors hold NaN or infinite values")
    if real.shape[1] != fake.shape[1]:
        raise DataError(f"real_features have {real.shape[1]} dimensions, fake_features {fake.shape[1]}; "
                        "extract both with the same feature model")
    mean_difference = real.mean(axis=0) - fake.mean(axis=0)
    if min(len(real), len(fake)) <= real.shape[1]:
        # Fewer images than dimensions (the rule per class): with S_r = A A^T and S_g = B B^T
        # (A = centred real rows^T / sqrt(N - 1)), the nonzero eigenvalues of S_r S_g are those of
        # (A^T B)(A^T B)^T, so the cross trace is the sum of the singular values of the (N, M)
        # matrix A^T B: the same number from an N x M SVD instead of two D x D eigendecompositions.
        real_centred = (real - real.mean(axis=0)) / np.sqrt(len(real) - 1)
        fake_centred = (fake - fake.mean(axis=0)) / np.sqrt(len(fake) - 1)
        cross_trace = np.linalg.svd(real_centred @ fake_centred.T, compute_uv=False).sum()
        traces = (real_centred**2).sum() + (fake_centred**2).sum()
    else:
        real_covariance = np.atleast_2d(np.cov(real, rowvar=False))
        fake_covariance = np.atleast_2d(np.cov(fake, rowvar=False))
        real_root = _symmetric_sqrt(real_covariance)
        middle = real_root @ fake_covariance @ real_root
        cross_trace = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
        traces = np.trace(real_covariance) + np.trace(fake_covariance)
    value = mean_difference @ mean_difference + traces - 2 * cross_trace
    return float(max(value, 0.0))
