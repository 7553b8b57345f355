"""evaluate_predictions gathers every scalar metric; evaluate_prediction_files writes them."""

import json

import numpy as np
import pytest

from synthaug.errors import ConfigError, DataError
from synthaug.metrics import (
    accuracy,
    aurc,
    brier_score,
    classwise_calibration_error,
    evaluate_prediction_files,
    evaluate_predictions,
    expected_calibration_error,
    expected_entropy,
    fpr_at_95_tpr,
    maximum_calibration_error,
    mutual_information,
    negative_log_likelihood,
    ood_aupr,
    ood_auroc,
    predictive_entropy,
    save_predictions,
)

OOD_SCORES = ("max_prob", "entropy", "mutual_information")


def test_values_equal_the_individual_metrics(predictions):
    probs, labels = predictions
    metrics = evaluate_predictions(probs, labels, n_bins=10)
    expected = {
        "accuracy": accuracy(probs, labels),
        "nll": negative_log_likelihood(probs, labels),
        "brier": brier_score(probs, labels),
        "ece": expected_calibration_error(probs, labels, n_bins=10),
        "mce": maximum_calibration_error(probs, labels, n_bins=10),
        "classwise_ece": classwise_calibration_error(probs, labels, n_bins=10),
        "aurc": aurc(probs, labels),
        "mean_predictive_entropy": predictive_entropy(probs).mean(),
        "mean_expected_entropy": expected_entropy(probs).mean(),
        "mean_mutual_information": mutual_information(probs).mean(),
    }
    assert metrics == pytest.approx(expected, rel=1e-12)
    assert all(type(value) is float for value in metrics.values())


def test_ood_metrics_for_every_score(make_predictions):
    probs, labels = make_predictions(4, 400, 5, seed=1)
    # Near-uniform predictions with more disagreement between samples stand in for OOD data.
    ood_probs, _ = make_predictions(4, 300, 5, seed=2, temperature=8.0)
    metrics = evaluate_predictions(probs, labels, ood_probs=ood_probs)
    in_scores = {
        "max_prob": 1 - probs.mean(axis=0).max(axis=1),
        "entropy": predictive_entropy(probs),
        "mutual_information": mutual_information(probs),
    }
    ood_scores = {
        "max_prob": 1 - ood_probs.mean(axis=0).max(axis=1),
        "entropy": predictive_entropy(ood_probs),
        "mutual_information": mutual_information(ood_probs),
    }
    for score in OOD_SCORES:
        assert metrics[f"ood_auroc_{score}"] == pytest.approx(ood_auroc(in_scores[score], ood_scores[score]))
        assert metrics[f"ood_aupr_{score}"] == pytest.approx(ood_aupr(in_scores[score], ood_scores[score]))
        assert metrics[f"ood_fpr95_{score}"] == pytest.approx(fpr_at_95_tpr(in_scores[score], ood_scores[score]))
    assert metrics["ood_auroc_entropy"] > 0.9


def test_ood_predictions_must_have_the_same_classes(predictions):
    probs, labels = predictions
    with pytest.raises(DataError, match="ood_probs: has 3 classes but probs has 5"):
        evaluate_predictions(probs, labels, ood_probs=np.full((10, 3), 1 / 3))


def test_files_are_written_and_never_silently_replaced(tmp_path, predictions):
    probs, labels = predictions
    predictions_path = save_predictions(tmp_path / "preds.npz", probs, labels, classes=list("abcde"))
    out = tmp_path / "eval"
    report = evaluate_prediction_files(predictions_path, out, n_bins=10, n_resamples=50)
    written = json.loads((out / "metrics.json").read_text())
    assert written == report
    assert written["metrics"] == pytest.approx(evaluate_predictions(probs, labels, n_bins=10))
    for name in ("accuracy", "ece", "nll"):
        interval = written["confidence_intervals"][name]
        assert interval["low"] <= interval["point"] <= interval["high"]
        assert interval["point"] == pytest.approx(written["metrics"][name])
    assert written["inputs"]["predictions"]["path"] == str(predictions_path)
    assert written["inputs"]["classes"] == list("abcde")
    assert (out / "reliability.png").read_bytes().startswith(b"\x89PNG")

    before = (out / "metrics.json").read_bytes()
    with pytest.raises(ConfigError, match="already exists; pass --overwrite"):
        evaluate_prediction_files(predictions_path, out, n_bins=5, n_resamples=50)
    assert (out / "metrics.json").read_bytes() == before
    evaluate_prediction_files(predictions_path, out, n_bins=5, n_resamples=50, overwrite=True)
    assert json.loads((out / "metrics.json").read_text())["settings"]["n_bins"] == 5
    assert sorted(path.name for path in out.iterdir()) == ["metrics.json", "reliability.png"]


def test_metric_bounds_cover_every_metric_evaluate_predictions_returns() -> None:
    """Every metric lies inside its bounds, and the fractions are bounded by [0, 1]."""
    from synthaug.metrics import metric_bounds

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=(5, 50))
    metrics = evaluate_predictions(probs, rng.integers(0, 4, 50), ood_probs=rng.dirichlet(np.ones(4), size=(5, 20)))
    for name, value in metrics.items():
        low, high = metric_bounds(f"digits:{name}")
        assert low <= value <= high, name
        assert metric_bounds(name) == (low, high)
    for name in ("accuracy", "ece", "aurc", "ood_auroc_mutual_information", "ood_fpr95_entropy"):
        assert metric_bounds(name) == (0.0, 1.0)
    assert metric_bounds("brier") == (0.0, 2.0)
    assert metric_bounds("nll") == (0.0, float("inf"))
    assert metric_bounds("something_else") == (float("-inf"), float("inf"))
