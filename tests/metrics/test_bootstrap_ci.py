"""Percentile bootstrap: determinism, coverage of the point, width, and resampling axis."""

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


@pytest.mark.parametrize(("option", "value"), [("n_resamples", 0), ("confidence", 1.0), ("confidence", 95)])
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
