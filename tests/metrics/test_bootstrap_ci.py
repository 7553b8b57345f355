"""Bootstrap intervals: determinism, coverage of the point, width, resampling axis, and the basic
interval of a biased statistic (binned ECE)."""

import math

import numpy as np
import pytest

from synthaug.errors import ConfigError
from synthaug.metrics import ConfidenceInterval, accuracy, bootstrap_ci, expected_calibration_error


def test_same_seed_same_interval_and_point_inside(predictions):
    probs, labels = predictions
    first = bootstrap_ci(expected_calibration_error, probs, labels, n_resamples=200, seed=3)
    again = bootstrap_ci(expected_calibration_error, probs, labels, n_resamples=200, seed=3)
    other = bootstrap_ci(expected_calibration_error, probs, labels, n_resamples=200, seed=4)
    assert isinstance(first, ConfidenceInterval)
    assert first == again
    assert first.point == other.point and (first.low, first.high) != (other.low, other.high)
    assert first.point == expected_calibration_error(probs, labels)
    assert first.low <= first.point <= first.high


def test_accuracy_interval_matches_the_binomial_standard_error():
    # 2000 examples, 80 % correct: the 95 % interval is about +-1.96 sqrt(.8 * .2 / 2000).
    n_examples, n_correct = 2000, 1600
    labels = np.zeros(n_examples, dtype=np.int64)
    labels[n_correct:] = 1
    probs = np.tile([0.9, 0.1], (n_examples, 1))
    point, low, high = bootstrap_ci(accuracy, probs, labels, n_resamples=1000, seed=0)
    half_width = 1.96 * math.sqrt(0.8 * 0.2 / n_examples)
    assert point == 0.8
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.1)
    assert low == pytest.approx(0.8 - half_width, abs=0.004)


def test_examples_are_resampled_with_all_their_samples(predictions):
    probs, labels = predictions
    shapes = []

    def recording_metric(resampled_probs, resampled_labels):
        shapes.append((resampled_probs.shape, resampled_labels.shape))
        return accuracy(resampled_probs, resampled_labels)

    bootstrap_ci(recording_metric, probs, labels, n_resamples=5)
    assert shapes == [(probs.shape, labels.shape)] * 6


def test_a_certain_outcome_has_a_zero_width_interval():
    labels = np.array([0, 1, 2, 0])
    assert bootstrap_ci(accuracy, np.eye(3)[labels], labels, n_resamples=50) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(("option", "value"), [("n_resamples", 0), ("confidence", 1.0), ("confidence", 95),
                                               ("method", "bca")])
def test_bad_options_are_config_errors(option, value, predictions):
    probs, labels = predictions
    with pytest.raises(ConfigError, match=option):
        bootstrap_ci(accuracy, probs, labels, **{option: value})


def test_top_label_bins_give_the_accuracy_and_ece_of_any_resample(predictions):
    from synthaug.metrics.bootstrap import resample_indices
    from synthaug.metrics.calibration import TopLabelBins

    probs, labels = predictions
    bins = TopLabelBins.of(probs, labels, n_bins=15)
    assert bins.accuracy() == accuracy(probs, labels)
    assert bins.expected_calibration_error() == expected_calibration_error(probs, labels)
    samples = probs if probs.ndim == 3 else probs[None]
    for rows in resample_indices(len(labels), 5, seed=1):
        # Exactly equal: the same sums in the same order, so a bootstrap gives the same interval.
        assert bins.accuracy(rows) == accuracy(samples[:, rows], labels[rows])
        assert bins.expected_calibration_error(rows) == expected_calibration_error(samples[:, rows], labels[rows])


def _calibrated(n_examples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Predictions calibrated by construction: each label is drawn from its own probabilities."""
    generator = np.random.default_rng(seed)
    logits = generator.normal(scale=2.0, size=(n_examples, 4))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return probs, np.array([generator.choice(4, p=row) for row in probs])


def test_the_basic_interval_reflects_the_percentile_quantiles_about_the_point():
    probs, labels = _calibrated(500)
    point, low, high = bootstrap_ci(expected_calibration_error, probs, labels, n_resamples=200, seed=0)
    basic = bootstrap_ci(expected_calibration_error, probs, labels, n_resamples=200, seed=0, method="basic")
    assert basic.point == point
    assert (basic.low, basic.high) == pytest.approx((2 * point - high, 2 * point - low))


def test_for_a_calibrated_model_the_ece_basic_interval_reaches_down_towards_zero():
    """The true calibration error is 0; the binned estimate and, more, its resamples are above it:
    the percentile interval starts near the estimate and goes up, the basic one reaches well below."""
    for seed in range(3):
        probs, labels = _calibrated(500, seed)
        percentile = bootstrap_ci(expected_calibration_error, probs, labels, n_resamples=200, seed=0)
        basic = bootstrap_ci(expected_calibration_error, probs, labels, n_resamples=200, seed=0, method="basic")
        assert percentile.low > 0.5 * percentile.point and percentile.high > 1.5 * percentile.point
        assert basic.low < 0.5 * basic.point and basic.high < 1.5 * basic.point
