"""Kernel Inception distance (KID): an unbiased distance between two sets of feature vectors.

``KID = MMD^2`` between the two sets with the cubic polynomial kernel
``k(x, y) = (x . y / D + 1)^3``, estimated without bias (the U-statistic: the diagonal of each
within-set kernel matrix is left out). Unlike the Fréchet distance, whose estimate from 80
images a class sits far above its value at infinite sample size (Chong & Forsyth 2020), KID
has no sample-size bias: two samples of one distribution score about 0 at any size (the
estimate can fall below 0), so its interval tells whether a distance is there at all. With
Inception-v3 pool features this is the KID of Bińkowski et al.; synthaug computes it in the
space it is given and names that space, as for the Fréchet distance.

The estimator is :func:`torchmetrics.image.kid.poly_mmd` (the one behind torchmetrics'
``KernelInceptionDistance``). The metric class itself is not used: it extracts its own
features from images (precomputed ones need a stand-in module), draws its subsets from the
global torch random state (no seed of ours) and returns only the mean and standard deviation,
where synthaug wants seeded subsets and their values for an interval.

References:
    Bińkowski, Sutherland, Arbel & Gretton, "Demystifying MMD GANs", ICLR 2018.
    Chong & Forsyth, "Effectively Unbiased FID and Inception Score and where to find them",
    CVPR 2020.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchmetrics.image.kid import poly_mmd

from synthaug.errors import DataError

__all__ = ["kernel_inception_distance", "unbiased_mmd2"]


def _features(values: Any, name: str) -> torch.Tensor:
    features = np.asarray(values, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise DataError(f"{name}: need at least 2 feature vectors as a 2-D array, got shape {features.shape}")
    if not np.isfinite(features).all():
        raise DataError(f"{name}: feature vectors hold NaN or infinite values")
    return torch.from_numpy(features)


def unbiased_mmd2(real_features: Any, fake_features: Any) -> float:
    """Unbiased MMD² with the cubic polynomial kernel between two equal-size sets ``(N, D)``.

    Raises:
        DataError: not 2-D, fewer than 2 vectors, sizes or dimensions differ, non-finite values.
    """
    real = _features(real_features, "real_features")
    fake = _features(fake_features, "fake_features")
    if real.shape != fake.shape:
        # poly_mmd divides the fake set's kernel sum by the real set's size: equal sizes only.
        raise DataError(f"real_features {tuple(real.shape)} and fake_features {tuple(fake.shape)}: need two sets "
                        "of the same size and dimension; subsample the larger one")
    return float(poly_mmd(real, fake, degree=3, gamma=None, coef=1.0))


def kernel_inception_distance(
    real_features: Any, fake_features: Any, *, subsets: int = 100, subset_size: int = 1000, seed: int = 0,
) -> np.ndarray:
    """KID on ``subsets`` random subsets of each set, as Bińkowski et al. compute it.

    Each subset takes ``subset_size`` vectors of each set without replacement (fewer when a set
    is smaller: the smaller set's size). Report the mean of the values; their spread is the
    sampling spread of a KID from ``subset_size`` images.

    Args:
        real_features: Real feature vectors ``(N, D)``.
        fake_features: Generated feature vectors ``(M, D)``.
        subsets: How many subsets.
        subset_size: Vectors per subset and set.
        seed: Seeds the subsets.

    Returns:
        float64 ``(subsets,)``: the KID of each subset.

    Raises:
        DataError: as :func:`unbiased_mmd2`, or ``subsets``/``subset_size`` below 1 and 2.
    """
    if subsets < 1 or subset_size < 2:
        raise DataError(f"need subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    real = _features(real_features, "real_features").numpy()
    fake = _features(fake_features, "fake_features").numpy()
    size = min(subset_size, len(real), len(fake))
    generator = np.random.default_rng(seed)
    return np.array([
        unbiased_mmd2(real[generator.choice(len(real), size, replace=False)],
                      fake[generator.choice(len(fake), size, replace=False)])
        for _ in range(subsets)
    ])
