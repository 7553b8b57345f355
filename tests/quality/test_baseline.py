"""compare_with_real and KID: equal-size measures beside a real-vs-real baseline."""

from __future__ import annotations

import numpy as np
import pytest

from synthaug.errors import DataError
from synthaug.quality.baseline import MEASURES, compare_with_real, describe_gap
from synthaug.quality.kid import kernel_inception_distance, unbiased_mmd2
from synthaug.quality.manifold import prdc

DIMENSIONS = 8


def _gaussian(count: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, DIMENSIONS)) + shift


def test_real_vs_real_at_unequal_sizes_matches_its_equal_size_value() -> None:
    real, other_real = _gaussian(1000, seed=0), _gaussian(100, seed=1)
    # The problem: 100 images against 1,000 touch few of 1,000 small balls, though both are real.
    assert prdc(real, other_real).coverage < 0.5
    measures = compare_with_real(real, other_real, draws=10, seed=0)
    assert set(measures) == set(MEASURES)
    equal_size = prdc(_gaussian(100, seed=2), other_real).coverage  # two real samples of 100
    coverage = measures["coverage"]
    assert abs(coverage.generated.mean - equal_size) < 0.05 and coverage.generated.mean > 0.9
    # The baseline sits beside it, and nothing tells the two real samples apart.
    assert abs(coverage.generated.mean - coverage.real.mean) < 0.05
    assert coverage.real.low <= coverage.real.mean <= coverage.real.high
    assert not any(measure.beyond_real for measure in measures.values())
    assert all(describe_gap(name, measure) is None for name, measure in measures.items())


def test_a_shifted_set_shows_its_gaps_in_words() -> None:
    measures = compare_with_real(_gaussian(1000, seed=0), _gaussian(100, seed=1, shift=0.7), draws=10, seed=0)
    coverage = measures["coverage"]
    assert coverage.beyond_real and coverage.generated.mean < coverage.real.mean - 0.2
    assert describe_gap("coverage", coverage) == (
        f"coverage {coverage.generated.mean:.3f} vs {coverage.real.mean:.3f} for real images: "
        "the generated images miss part of the real variety")
    assert measures["frechet_distance"].beyond_real and measures["kid"].beyond_real


def test_draws_are_seeded_and_small_sets_drop_what_they_cannot_measure() -> None:
    real, fake = _gaussian(60, seed=0), _gaussian(40, seed=1)
    assert compare_with_real(real, fake, seed=3) == compare_with_real(real, fake, seed=3)
    assert compare_with_real(real, fake, seed=3) != compare_with_real(real, fake, seed=4)
    assert set(compare_with_real(real[:10], fake, nearest_k=5)) == {"frechet_distance", "kid"}  # samples of 5
    assert compare_with_real(real[:3], fake) == {}
    with pytest.raises(DataError, match="same feature model"):
        compare_with_real(real, fake[:, :3])


def test_unbiased_mmd_matches_a_hand_computed_value() -> None:
    # k(x, y) = (x.y / 2 + 1)^3. Within X and within Y the off-diagonal kernels are both 1;
    # across, k = 3.375 for x.y = 1 and 1 for x.y = 0, mean 2.1875: MMD^2 = 1 + 1 - 2 * 2.1875.
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert unbiased_mmd2(x, y) == pytest.approx(-2.375)
    # And the U-statistic written out, on random sets.
    a, b = _gaussian(6, seed=0), _gaussian(6, seed=1)

    def kernel(u: np.ndarray, v: np.ndarray) -> float:
        return (u @ v / DIMENSIONS + 1) ** 3

    pairs = [(i, j) for i in range(6) for j in range(6) if i != j]
    expected = (np.mean([kernel(a[i], a[j]) for i, j in pairs]) + np.mean([kernel(b[i], b[j]) for i, j in pairs])
                - 2 * np.mean([kernel(a[i], b[j]) for i in range(6) for j in range(6)]))
    assert unbiased_mmd2(a, b) == pytest.approx(expected)
    with pytest.raises(DataError, match="same size"):
        unbiased_mmd2(a, b[:5])


def test_kid_is_zero_for_one_distribution_and_positive_for_a_shift() -> None:
    real = _gaussian(1000, seed=0)
    same = kernel_inception_distance(real, _gaussian(400, seed=1), subsets=50, subset_size=200, seed=0)
    low, high = np.percentile(same, [2.5, 97.5])
    assert low < 0 < high and abs(same.mean()) < 0.05
    shifted = kernel_inception_distance(real, _gaussian(400, seed=1, shift=0.5), subsets=50, subset_size=200, seed=0)
    assert np.percentile(shifted, 2.5) > high
    assert len(same) == 50 and np.array_equal(
        same, kernel_inception_distance(real, _gaussian(400, seed=1), subsets=50, subset_size=200, seed=0))
