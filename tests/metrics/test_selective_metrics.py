"""Risk-coverage curve and AURC: hand values, ties, and ranking quality."""

import numpy as np
import pytest

from synthaug.metrics import accuracy, aurc, risk_coverage_curve


def _binary(confidences, correct):
    """Two-class predictions with the given top-label confidences and correctness."""
    confidences = np.asarray(confidences)
    probs = np.stack([confidences, 1.0 - confidences], axis=1)
    labels = np.where(np.asarray(correct), 0, 1)
    return probs, labels


def test_hand_computed_without_ties():
    # Most confident first: correct, wrong, correct, wrong -> risks 0, 1/2, 1/3, 2/4.
    probs, labels = _binary([0.9, 0.8, 0.7, 0.6], [True, False, True, False])
    curve = risk_coverage_curve(probs, labels)
    np.testing.assert_allclose(curve.coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve.risk, [0.0, 0.5, 1 / 3, 0.5])
    np.testing.assert_allclose(curve.threshold, [0.9, 0.8, 0.7, 0.6])
    assert aurc(probs, labels) == pytest.approx((0 + 0.5 + 1 / 3 + 0.5) / 4)


def test_tied_confidences_are_accepted_together():
    # The two 0.9s (one wrong) enter together at coverage 2/3 with risk 1/2, whatever their order.
    probs, labels = _binary([0.9, 0.9, 0.6], [False, True, True])
    swapped_probs, swapped_labels = probs[[1, 0, 2]], labels[[1, 0, 2]]
    curve = risk_coverage_curve(probs, labels)
    np.testing.assert_allclose(curve.coverage, [2 / 3, 1.0])
    np.testing.assert_allclose(curve.risk, [0.5, 1 / 3])
    expected = 0.5 * 2 / 3 + (1 / 3) * (1 / 3)
    assert aurc(probs, labels) == pytest.approx(expected)
    assert aurc(swapped_probs, swapped_labels) == pytest.approx(expected)


def test_full_coverage_risk_is_the_error_rate(predictions):
    probs, labels = predictions
    curve = risk_coverage_curve(probs, labels)
    assert curve.coverage[-1] == 1.0
    assert curve.risk[-1] == pytest.approx(1 - accuracy(probs, labels))
    assert (np.diff(curve.threshold) < 0).all()


def test_confidence_that_ranks_errors_last_has_lower_aurc():
    correct = [True] * 6 + [False] * 4
    good_probs, labels = _binary(np.linspace(0.95, 0.55, 10), correct)
    bad_probs, _ = _binary(np.linspace(0.55, 0.95, 10), correct)
    assert aurc(good_probs, labels) < aurc(bad_probs, labels)
