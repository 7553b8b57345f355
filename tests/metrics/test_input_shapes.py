"""Input handling shared by every metric: shapes, numpy/torch, and one-line errors."""

from functools import partial

import numpy as np
import pytest
import torch

from synthaug.errors import ConfigError, DataError
from synthaug.metrics import (
    accuracy,
    aurc,
    brier_score,
    classwise_calibration_error,
    expected_calibration_error,
    expected_entropy,
    maximum_calibration_error,
    mutual_information,
    negative_log_likelihood,
    predictive_entropy,
)

LABELLED_METRICS = [
    accuracy,
    negative_log_likelihood,
    brier_score,
    expected_calibration_error,
    partial(expected_calibration_error, strategy="quantile"),
    maximum_calibration_error,
    classwise_calibration_error,
    aurc,
]
UNCERTAINTIES = [predictive_entropy, expected_entropy, mutual_information]


def _name(metric) -> str:
    return getattr(metric, "__name__", None) or f"{metric.func.__name__}{metric.keywords}"


@pytest.mark.parametrize("metric", LABELLED_METRICS, ids=_name)
def test_two_dimensional_input_equals_one_sample(metric, make_predictions):
    probs, labels = make_predictions(1, 300, 4, seed=1)
    assert metric(probs[0], labels) == metric(probs, labels)


@pytest.mark.parametrize("metric", LABELLED_METRICS, ids=_name)
def test_torch_input_equals_numpy(metric, predictions):
    probs, labels = predictions
    assert metric(torch.from_numpy(probs), torch.from_numpy(labels)) == metric(probs, labels)


@pytest.mark.parametrize("uncertainty", UNCERTAINTIES, ids=_name)
def test_uncertainties_accept_torch_and_two_dimensional_input(uncertainty, predictions):
    probs, _ = predictions
    np.testing.assert_array_equal(uncertainty(torch.from_numpy(probs)), uncertainty(probs))
    np.testing.assert_array_equal(uncertainty(probs[:1]), uncertainty(probs[0]))


def test_tensor_that_requires_grad_and_half_precision_are_accepted(predictions):
    probs, labels = predictions
    tensor = torch.from_numpy(probs).requires_grad_(True)
    assert accuracy(tensor, labels) == accuracy(probs, labels)
    half = torch.from_numpy(probs).to(torch.bfloat16)
    assert accuracy(half, labels) == pytest.approx(accuracy(probs, labels), abs=0.02)


@pytest.mark.parametrize(
    ("probs", "labels", "message"),
    [
        (np.full((2, 3, 4, 5), 0.2), [0, 1, 2], "shape (S, N, C) or (N, C)"),
        (np.array([[2.0, -1.0], [0.5, 0.5]]), [0, 1], "must lie in [0, 1]"),
        (np.array([[np.nan, 1.0], [0.5, 0.5]]), [0, 1], "must lie in [0, 1]"),
        (np.array([[0.2, 0.2], [0.5, 0.5]]), [0, 1], "must sum to 1"),
        (np.zeros((0, 3)), np.zeros(0, dtype=int), "at least one sample, one example"),
        (np.array([["a", "b"]]), [0], "real-valued"),
        (np.array([[0.5, 0.5], [0.5, 0.5]]), [0, 2], "class indices must lie in [0, 2)"),
        (np.array([[0.5, 0.5], [0.5, 0.5]]), [0.0, 1.0], "integer class indices"),
        (np.array([[0.5, 0.5], [0.5, 0.5]]), [0, 1, 1], "expected shape (2,)"),
    ],
)
def test_bad_input_is_a_one_line_data_error(probs, labels, message):
    with pytest.raises(DataError) as caught:
        expected_calibration_error(probs, np.asarray(labels))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("option", "value"), [("n_bins", 0), ("n_bins", 2.5), ("strategy", "equal-width")])
def test_bad_option_is_a_config_error(option, value, predictions):
    probs, labels = predictions
    with pytest.raises(ConfigError, match=option):
        expected_calibration_error(probs, labels, **{option: value})
