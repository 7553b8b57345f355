"""Precision, recall, density and coverage of generated data in a feature space.

Each set of feature vectors defines a manifold: the union of balls around its points whose
radius is the distance to the point's k-th nearest neighbour within the same set. Then

* **precision**: share of generated points inside the real manifold (fidelity);
* **recall**: share of real points inside the generated manifold (diversity);
* **density**: how many real balls contain a generated point, averaged and divided by k
  (fidelity that counts crowding: about 1 for a generator that matches the real density,
  above 1 when it piles up on a few real modes, below when it strays);
* **coverage**: share of real points whose ball contains at least one generated point
  (diversity that, unlike recall, is not inflated by generated outliers with huge balls).

FID mixes the first two into one number; these keep them apart. Comparisons are strict
(``<``) and each point's own zero distance counts as its first neighbour, both exactly as
in the authors' reference implementation (the ``prdc`` package), so the numbers agree with it.

References:
    Kynkäänniemi, Karras, Laine, Lehtinen & Aila, "Improved Precision and Recall Metric for
    Assessing Generative Models", NeurIPS 2019.
    Naeem, Oh, Uh, Choi & Yoo, "Reliable Fidelity and Diversity Metrics for Generative
    Models", ICML 2020.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from synthaug.errors import DataError

__all__ = ["PRDC", "prdc"]

# Rows of one distance block: 2,048 x 50,000 float64 = 800 MB at most.
_CHUNK = 2048


@dataclass(frozen=True)
class PRDC:
    """Precision, recall, density and coverage of one generated set against one real set.

    Attributes:
        precision: Share of generated points in the real k-NN manifold, in [0, 1].
        recall: Share of real points in the generated k-NN manifold, in [0, 1].
        density: Mean count of real k-NN balls holding a generated point, over k; >= 0.
        coverage: Share of real balls holding at least one generated point, in [0, 1].
        nearest_k: The k of the k-NN radii.
    """

    precision: float
    recall: float
    density: float
    coverage: float
    nearest_k: int

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PRDC:
        """The record from :meth:`to_dict`'s output."""
        return cls(**data)


def _distances(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Euclidean distances float64 ``(len(rows), len(columns))``, clipped at 0 against rounding."""
    squared = (rows**2).sum(axis=1)[:, None] + (columns**2).sum(axis=1)[None, :] - 2.0 * rows @ columns.T
    return np.sqrt(np.clip(squared, 0.0, None))


def nearest_neighbour_radii(features: np.ndarray, nearest_k: int) -> np.ndarray:
    """Distance of each row of ``features (N, D)`` to its k-th nearest other row, float64 ``(N,)``.

    The row itself (distance 0) is neighbour 0, as in the reference implementation.
    """
    radii = np.empty(len(features))
    for start in range(0, len(features), _CHUNK):
        block = _distances(features[start:start + _CHUNK], features)
        radii[start:start + _CHUNK] = np.partition(block, nearest_k, axis=1)[:, nearest_k]
    return radii


def _as_features(values: Any, name: str, nearest_k: int) -> np.ndarray:
    features = np.asarray(values, dtype=np.float64)
    if features.ndim != 2:
        raise DataError(f"{name}: need a 2-D array (N, D) of feature vectors, got shape {features.shape}")
    if len(features) <= nearest_k:
        raise DataError(f"{name}: need more than nearest_k={nearest_k} feature vectors, got {len(features)}")
    if not np.isfinite(features).all():
        raise DataError(f"{name}: feature vectors hold NaN or infinite values")
    return features


def prdc(real_features: Any, fake_features: Any, nearest_k: int = 5) -> PRDC:
    """Precision, recall, density and coverage (Naeem et al. 2020) of ``fake_features``.

    Args:
        real_features: Real feature vectors ``(N, D)``.
        fake_features: Generated feature vectors ``(M, D)``, in the same space.
        nearest_k: k of the k-nearest-neighbour radii (the paper's default is 5).

    Returns:
        The :class:`PRDC` record.

    Raises:
        DataError: not 2-D, different dimensions, non-finite values, or at most ``nearest_k``
            vectors in a set.
    """
    if isinstance(nearest_k, bool) or not isinstance(nearest_k, int) or nearest_k < 1:
        raise DataError(f"nearest_k must be a positive integer, got {nearest_k!r}")
    real = _as_features(real_features, "real_features", nearest_k)
    fake = _as_features(fake_features, "fake_features", nearest_k)
    if real.shape[1] != fake.shape[1]:
        raise DataError(f"real_features have {real.shape[1]} dimensions, fake_features {fake.shape[1]}; "
                        "extract both with the same feature model")
    real_radii = nearest_neighbour_radii(real, nearest_k)
    fake_radii = nearest_neighbour_radii(fake, nearest_k)
    inside_real = np.zeros(len(fake), dtype=np.int64)  # per fake point: real balls holding it
    real_in_fake = np.zeros(len(real), dtype=bool)
    real_covered = np.zeros(len(real), dtype=bool)
    for start in range(0, len(real), _CHUNK):
        block = _distances(real[start:start + _CHUNK], fake)  # (rows of real, M)
        radii = real_radii[start:start + _CHUNK, None]
        inside_real += (block < radii).sum(axis=0)
        real_in_fake[start:start + _CHUNK] = (block < fake_radii[None, :]).any(axis=1)
        real_covered[start:start + _CHUNK] = block.min(axis=1) < real_radii[start:start + _CHUNK]
    return PRDC(
        precision=float((inside_real > 0).mean()),
        recall=float(real_in_fake.mean()),
        density=float(inside_real.mean() / nearest_k),
        coverage=float(real_covered.mean()),
        nearest_k=nearest_k,
    )
