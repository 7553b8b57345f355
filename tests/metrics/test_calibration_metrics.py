"""ECE, MCE, classwise ECE and reliability data: hand values, torchmetrics, properties."""

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

from synthaug.metrics import (
    classwise_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    reliability_diagram,
)

# Four binary predictions whose confidences sit on the edges of 4 uniform bins
# (0, .25, .5, .75, 1), where the bin conventions matter.
EDGE_PROBS = np.array([[0.75, 0.25], [1.0, 0.0], [0.6, 0.4], [0.5, 0.5]])
EDGE_LABELS = np.array([0, 1, 1, 0])


def test_hand_computed_right_closed_bins():
    """Bins are (lo, hi]: 0.5 is in (.25, .5], 0.75 and 0.6 in (.5, .75], 1.0 in (.75, 1].

    Bin (.25, .5]: confidence .5, accuracy 1 (the tie predicts class 0); bin (.5, .75]:
    confidence .675, accuracy .5; bin (.75, 1]: confidence 1, accuracy 0.
    """
    diagram = reliability_diagram(EDGE_PROBS, EDGE_LABELS, n_bins=4)
    np.testing.assert_array_equal(diagram.bin_count, [0, 1, 2, 1])
    np.testing.assert_allclose(diagram.bin_confidence, [np.nan, 0.5, 0.675, 1.0])
    np.testing.assert_allclose(diagram.bin_accuracy, [np.nan, 1.0, 0.5, 0.0])
    np.testing.assert_allclose(diagram.bin_edges, [0.0, 0.25, 0.5, 0.75, 1.0])
    expected_ece = (1 * 0.5 + 2 * 0.175 + 1 * 1.0) / 4
    assert expected_calibration_error(EDGE_PROBS, EDGE_LABELS, n_bins=4) == pytest.approx(expected_ece)
    assert diagram.expected_calibration_error == pytest.approx(expected_ece)
    assert maximum_calibration_error(EDGE_PROBS, EDGE_LABELS, n_bins=4) == pytest.approx(1.0)


def test_torchmetrics_differs_only_on_bin_edges():
    """torchmetrics bins [lo, hi) and puts a confidence of exactly 1.0 in an extra bin.

    On the edge case above it therefore groups {.5, .6}, {.75}, {1.0}:
    (2 * |.5 - .55| + |1 - .75| + |0 - 1|) / 4 = 0.3375, where Guo et al.'s (lo, hi] gives 0.4625.
    """
    torchmetrics_ece = multiclass_calibration_error(
        torch.tensor(EDGE_PROBS, dtype=torch.float32), torch.tensor(EDGE_LABELS), num_classes=2, n_bins=4, norm="l1"
    ).item()
    assert torchmetrics_ece == pytest.approx(0.3375)
    assert expected_calibration_error(EDGE_PROBS, EDGE_LABELS, n_bins=4) == pytest.approx(0.4625)


@pytest.mark.parametrize("n_bins", [5, 15])
def test_matches_torchmetrics_away_from_bin_edges(n_bins, make_predictions):
    """With continuous confidences no value lies on an edge, so both conventions coincide."""
    probs, labels = make_predictions(1, 2000, 6, seed=n_bins, temperature=0.5)
    preds, target = torch.from_numpy(probs[0]), torch.from_numpy(labels)
    for norm, metric in (("l1", expected_calibration_error), ("max", maximum_calibration_error)):
        reference = multiclass_calibration_error(preds, target, num_classes=6, n_bins=n_bins, norm=norm).item()
        assert metric(probs, labels, n_bins=n_bins) == pytest.approx(reference, abs=1e-6)


def test_perfectly_calibrated_predictions_have_zero_error():
    # In each confidence group exactly that fraction of predictions is correct.
    groups = [(0.6, 5, 3), (0.8, 5, 4), (1.0, 2, 2)]
    probs, labels = [], []
    for confidence, count, correct in groups:
        probs += [[confidence, 1.0 - confidence]] * count
        labels += [0] * correct + [1] * (count - correct)
    probs, labels = np.array(probs), np.array(labels)
    for strategy in ("uniform", "quantile"):
        assert expected_calibration_error(probs, labels, strategy=strategy) == pytest.approx(0.0, abs=1e-12)
        assert maximum_calibration_error(probs, labels, strategy=strategy) == pytest.approx(0.0, abs=1e-12)


def test_quantile_bins_hold_equal_mass(make_predictions):
    probs, labels = make_predictions(1, 1000, 4, seed=3)
    diagram = reliability_diagram(probs, labels, n_bins=10, strategy="quantile")
    np.testing.assert_array_equal(diagram.bin_count, np.full(10, 100))
    assert diagram.strategy == "quantile"


def test_quantile_hand_computed():
    # Confidences .75, 1, .6, .5 -> edges at the quantiles (.5, .675, 1): bins {.5, .6}, {.75, 1}.
    expected = (2 * abs(0.5 - 0.55) + 2 * abs(0.5 - 0.875)) / 4
    assert expected_calibration_error(EDGE_PROBS, EDGE_LABELS, n_bins=2, strategy="quantile") == pytest.approx(expected)


def test_classwise_hand_computed():
    # Class 0: p = .75 (hit), .5 (miss) in bins 3 and 2 of 4; class 1: p = .25 (miss), .5 (hit).
    probs, labels = np.array([[0.75, 0.25], [0.5, 0.5]]), np.array([0, 1])
    per_class = (abs(1 - 0.75) + abs(0 - 0.5)) / 2
    assert classwise_calibration_error(probs, labels, n_bins=4) == pytest.approx(per_class)


def test_classwise_counts_probability_zero_in_the_first_bin():
    # Class 1 gets probability exactly 0 and is the label: a gap of 1 that must not be dropped.
    assert classwise_calibration_error(np.array([[1.0, 0.0]]), np.array([1]), n_bins=4) == pytest.approx(1.0)


def test_classwise_is_the_mean_of_per_class_binary_errors(make_predictions):
    """Each class's error is the binary calibration error of p(c) against 1[y = c], which is
    torchmetrics' BinaryCalibrationError (no probability lies on a bin edge here)."""
    probs, labels = make_predictions(2, 1500, 5, seed=7)
    mean_probs = probs.mean(axis=0)
    per_class = [
        binary_calibration_error(
            torch.from_numpy(np.ascontiguousarray(mean_probs[:, class_index])),
            torch.from_numpy((labels == class_index).astype(np.int64)),
            n_bins=10,
            norm="l1",
        ).item()
        for class_index in range(5)
    ]
    assert classwise_calibration_error(probs, labels, n_bins=10) == pytest.approx(np.mean(per_class), abs=1e-6)


def test_classwise_quantile_hand_computed():
    # Class 0: p = .9 .8 .7 .6, labels hit the first two; the median .75 splits {.7, .6} (0 hits)
    # from {.9, .8} (2 hits): (|0 - 1.3| + |2 - 1.7|) / 4 = .4. Class 1 mirrors it: also .4.
    # Uniform bins put each class in one bin: |2 - 3| / 4 = .25 and |2 - 1| / 4 = .25.
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    labels = np.array([0, 0, 1, 1])
    assert classwise_calibration_error(probs, labels, n_bins=2, strategy="quantile") == pytest.approx(0.4)
    assert classwise_calibration_error(probs, labels, n_bins=2) == pytest.approx(0.25)


def test_overconfidence_raises_the_error(make_predictions):
    probs, labels = make_predictions(1, 2000, 5, seed=11)
    sharpened = probs**4
    sharpened /= sharpened.sum(axis=-1, keepdims=True)
    assert expected_calibration_error(sharpened, labels) > expected_calibration_error(probs, labels) + 0.05
