"""Fréchet distance: closed forms, and the usual sqrtm formula of FID code."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from synthaug.errors import DataError
from synthaug.quality import frechet_distance


def _sqrtm_formula(real: np.ndarray, fake: np.ndarray) -> float:
    """The formula of pytorch-fid, with scipy's sqrtm."""
    mu1, mu2 = real.mean(axis=0), fake.mean(axis=0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def test_agrees_with_the_sqrtm_formula() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(500, 6))
    fake = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) * 0.5 + 1.0
    assert frechet_distance(real, fake) == pytest.approx(_sqrtm_formula(real, fake), rel=1e-8)


def test_fewer_images_than_dimensions_agrees_with_the_eigendecomposition_path() -> None:
    # The per-class case (80 images, 1,024 thumbnail pixels) takes the SVD shortcut; rank-deficient
    # covariances make sqrtm unreliable, so compare with the symmetric-root formula the other path uses.
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(12, 30)), rng.normal(size=(9, 30)) * 1.5 + 0.3
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    values, vectors = np.linalg.eigh(s1)
    root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0, None)).sum()
    mean = real.mean(axis=0) - fake.mean(axis=0)
    expected = mean @ mean + np.trace(s1) + np.trace(s2) - 2 * cross
    # The eigen path takes square roots of ~1e-14 rounding eigenvalues of the singular product
    # (each adds ~1e-7); the SVD path has none, hence the looser tolerance.
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-6)


def test_one_dimension_closed_form() -> None:
    # Two 1-D Gaussians: FD = (m1 - m2)^2 + (s1 - s2)^2, with the sample moments.
    rng = np.random.default_rng(1)
    real, fake = rng.normal(0, 1, size=(1000, 1)), rng.normal(3, 2, size=(800, 1))
    expected = (real.mean() - fake.mean()) ** 2 + (real.std(ddof=1) - fake.std(ddof=1)) ** 2
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-9)


def test_identical_sets_and_singular_covariances() -> None:
    rng = np.random.default_rng(2)
    few = rng.normal(size=(5, 40))  # fewer vectors than dimensions: singular covariances
    assert frechet_distance(few, few) == pytest.approx(0.0, abs=1e-8)
    assert np.isfinite(frechet_distance(few, rng.normal(size=(7, 40))))
    with pytest.raises(DataError, match="at least 2"):
        frechet_distance(few[:1], few)
