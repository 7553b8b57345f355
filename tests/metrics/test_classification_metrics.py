"""Accuracy, NLL and Brier score against hand-computed values and reference libraries."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import brier_score_loss

from synthaug.metrics import accuracy, brier_score, negative_log_likelihood
from synthaug.metrics.classification import PROBABILITY_FLOOR

HAND_PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4]])
HAND_LABELS = np.array([0, 2, 2])


def test_hand_computed_values():
    # Predicted classes 0, 1, 2 against labels 0, 2, 2: two of three correct.
    assert accuracy(HAND_PROBS, HAND_LABELS) == pytest.approx(2 / 3)
    assert negative_log_likelihood(HAND_PROBS, HAND_LABELS) == pytest.approx(
        -(math.log(0.7) + math.log(0.3) + math.log(0.4)) / 3
    )
    # Squared errors per example: 0.09+0.04+0.01, 0.01+0.36+0.49, 0.09+0.09+0.36.
    assert brier_score(HAND_PROBS, HAND_LABELS) == pytest.approx((0.14 + 0.86 + 0.54) / 3)


def test_metrics_score_the_mean_predictive():
    # Two members that disagree completely average to (0.5, 0.5) for every example.
    members = np.array([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])
    labels = np.array([0, 1])
    assert negative_log_likelihood(members, labels) == pytest.approx(math.log(2))
    assert brier_score(members, labels) == pytest.approx(0.5)
    # A tie goes to the lowest class index: class 0 is predicted for both examples.
    assert accuracy(members, labels) == 0.5


def test_zero_probability_on_the_label_costs_the_floor():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    expected = (-math.log(PROBABILITY_FLOOR) + math.log(2)) / 2
    assert negative_log_likelihood(probs, np.array([1, 0])) == pytest.approx(expected)


def test_agree_with_torch_and_scikit_learn(predictions):
    probs, labels = predictions
    mean_probs = torch.from_numpy(probs).double().mean(dim=0)
    reference_nll = torch.nn.functional.nll_loss(mean_probs.log(), torch.from_numpy(labels)).item()
    assert negative_log_likelihood(probs, labels) == pytest.approx(reference_nll, rel=1e-9)
    # scikit-learn insists on rows summing to 1 in float64; the float32 inputs are off by ~1e-7.
    normalised = (mean_probs / mean_probs.sum(dim=1, keepdim=True)).numpy()
    reference_brier = brier_score_loss(labels, normalised, labels=range(probs.shape[2]), scale_by_half=False)
    assert brier_score(probs, labels) == pytest.approx(reference_brier, rel=1e-6)
    assert accuracy(probs, labels) == pytest.approx((mean_probs.argmax(dim=1).numpy() == labels).mean())


def test_perfect_predictions_score_perfectly():
    labels = np.array([2, 0, 1, 1])
    one_hot = np.eye(3)[labels]
    assert accuracy(one_hot, labels) == 1.0
    assert negative_log_likelihood(one_hot, labels) == 0.0
    assert brier_score(one_hot, labels) == 0.0
