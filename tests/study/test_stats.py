"""Study statistics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from synthaug.study.stats import exchange_rate, monotone_curve, paired_difference, size_to_match, t_interval

# Student's t quantile t(0.975, df=2), from tables.
T_975_DF2 = 4.302652729911275


def test_t_interval_matches_hand_computation() -> None:
    interval = t_interval([0.80, 0.82, 0.84])
    # mean 0.82, sample std 0.02, half-width t * s / sqrt(3)
    half_width = T_975_DF2 * 0.02 / math.sqrt(3)
    assert interval.mean == pytest.approx(0.82)
    assert interval.std == pytest.approx(0.02)
    assert (interval.low, interval.high) == pytest.approx((0.82 - half_width, 0.82 + half_width))
    assert interval.n == 3


def test_t_interval_is_clipped_to_the_range_the_metric_can_take() -> None:
    """Three seeds that disagree (the demo's ensemble on generated images: OOD AUROCs 0.64,
    0.59, 0.15) give mean ± t s / sqrt(3) = 0.46 [-0.21, 1.13]; clipped to [0, 1]."""
    values = [0.6385, 0.5926, 0.1487]
    unclipped = t_interval(values)
    assert unclipped.low < 0 and unclipped.high > 1
    clipped = t_interval(values, bounds=(0.0, 1.0))
    assert (clipped.low, clipped.high) == (0.0, 1.0)
    assert (clipped.mean, clipped.std) == (unclipped.mean, unclipped.std)
    # An interval inside the bounds is left alone.
    assert t_interval([0.80, 0.82, 0.84], bounds=(0.0, 1.0)) == t_interval([0.80, 0.82, 0.84])


def test_t_interval_with_one_value_has_no_interval() -> None:
    interval = t_interval([0.7])
    assert interval.mean == 0.7 and interval.n == 1
    assert math.isnan(interval.low) and math.isnan(interval.high)


def test_paired_difference_pairs_by_seed() -> None:
    treatment = {0: 0.90, 1: 0.80, 2: 0.85, 7: 0.5}  # seed 7 has no partner and is left out
    baseline = {0: 0.80, 1: 0.70, 2: 0.80}
    difference = paired_difference(treatment, baseline)
    # differences 0.10, 0.10, 0.05: mean 0.08333, std 0.02887
    assert difference.n == 3
    assert difference.mean == pytest.approx(0.25 / 3)
    half_width = T_975_DF2 * difference.std / math.sqrt(3)
    assert difference.std == pytest.approx(math.sqrt(((1 / 60) ** 2 * 2 + (1 / 30) ** 2) / 2))
    assert difference.high - difference.mean == pytest.approx(half_width)


def test_size_to_match_interpolates_linearly_in_log_size() -> None:
    # 0.6 is halfway from 0.5 to 0.7, so halfway between log 10 and log 100: sqrt(1000).
    match = size_to_match([10, 100], [0.5, 0.7], 0.6)
    assert match.status == "interpolated"
    assert match.size == pytest.approx(math.sqrt(1000))


def test_size_to_match_pools_a_non_monotone_curve() -> None:
    # 0.8 then 0.7 is pooled to 0.75, 0.75; 0.6 lies 0.4 of the way from 0.5 to 0.75.
    sizes, fitted = monotone_curve([1000, 10, 100], [0.7, 0.5, 0.8])
    assert list(sizes) == [10, 100, 1000] and fitted == pytest.approx([0.5, 0.75, 0.75])
    assert size_to_match([10, 100, 1000], [0.5, 0.8, 0.7], 0.6).size == pytest.approx(10**1.4)


def test_size_to_match_edges() -> None:
    assert size_to_match([10, 100], [0.5, 0.7], 0.71).status == "not_reached"
    assert math.isinf(size_to_match([10, 100], [0.5, 0.7], 0.71).size)
    below = size_to_match([10, 100], [0.5, 0.7], 0.4)
    assert (below.size, below.status) == (10, "at_or_below")


def test_exchange_rate_with_identical_seeds_is_exact() -> None:
    real = {10: {0: 0.6, 1: 0.6, 2: 0.6}, 100: {0: 0.8, 1: 0.8, 2: 0.8}}
    synthetic = {10: {0: 0.5, 1: 0.5, 2: 0.5}, 1000: {0: 0.7, 1: 0.7, 2: 0.7}}
    rate = exchange_rate(real, synthetic, 10, resamples=200)
    # 0.6 is halfway from 0.5 to 0.7 in accuracy, so halfway from log 10 to log 1000: 100 images.
    assert rate.synthetic_per_class == pytest.approx(100.0)
    assert rate.rate == pytest.approx(10.0)
    assert (rate.rate_low, rate.rate_high) == pytest.approx((10.0, 10.0))
    assert rate.status == "interpolated" and rate.not_reached_fraction == 0.0

    never = exchange_rate(real, synthetic, 100, resamples=200)
    assert never.status == "not_reached" and math.isinf(never.rate) and never.not_reached_fraction == 1.0


def test_exchange_rate_interval_covers_seed_noise() -> None:
    real = {10: {0: 0.58, 1: 0.60, 2: 0.62}}
    synthetic = {10: {0: 0.49, 1: 0.50, 2: 0.51}, 1000: {0: 0.69, 1: 0.70, 2: 0.71}}
    rate = exchange_rate(real, synthetic, 10, resamples=500, seed=3)
    assert rate.rate_low < rate.rate < rate.rate_high
    assert rate.rate == pytest.approx(10.0)
    assert rate == exchange_rate(real, synthetic, 10, resamples=500, seed=3)  # seeded


def test_paired_bootstrap_difference_of_per_example_means() -> None:
    import numpy as np

    from synthaug.study.stats import paired_bootstrap_difference

    # Treatment right on every example, baseline right on every other one: the difference is
    # 0.5 in every resample that keeps the pairs together.
    treatment = np.ones((3, 10))
    baseline = np.tile([1.0, 0.0], (2, 5))
    point, low, high = paired_bootstrap_difference(treatment, baseline, resamples=300)
    assert point == 0.5 and 0.0 <= low < 0.5 < high <= 1.0
    # Identical per-example differences leave no sampling spread at all.
    assert paired_bootstrap_difference(np.ones((2, 8)), np.zeros((1, 8)), resamples=200) == (1.0, 1.0, 1.0)

