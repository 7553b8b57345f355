"""``synthaug evaluate``: writes metrics.json + reliability.png, refuses to overwrite, and turns
a bad predictions file into one line on stderr with exit code 1."""

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import synthaug.cli.evaluate  # noqa: F401  (registers the command on the app)
from synthaug.cli._app import app
from synthaug.errors import ConfigError
from synthaug.metrics import evaluate_predictions, save_predictions


def _predictions(seed: int, n_examples: int, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    logits = generator.normal(scale=2.0, size=(2, n_examples, 4)) / temperature
    probs = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    return probs.astype(np.float32), generator.integers(0, 4, size=n_examples)


@pytest.mark.slow
def test_evaluate_writes_metrics_and_plot_and_refuses_to_overwrite(tmp_path):
    probs, labels = _predictions(seed=0, n_examples=300, temperature=1.0)
    ood_probs, ood_labels = _predictions(seed=1, n_examples=200, temperature=5.0)
    predictions = save_predictions(tmp_path / "test.npz", probs, labels, classes=["a", "b", "c", "d"])
    ood = save_predictions(tmp_path / "digits.npz", ood_probs, ood_labels)
    out = tmp_path / "eval"
    runner = CliRunner()

    result = runner.invoke(app, ["evaluate", str(predictions), "--ood", str(ood), "--bins", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "ood_auroc_entropy" in result.output and "accuracy" in result.output
    report = json.loads((out / "metrics.json").read_text())
    assert report["metrics"] == evaluate_predictions(probs, labels, ood_probs=ood_probs, n_bins=10)
    assert set(report["confidence_intervals"]) == {"accuracy", "ece", "nll"}
    assert report["inputs"]["predictions"]["path"] == str(predictions)
    assert report["inputs"]["ood_predictions"]["path"] == str(ood)
    assert "ece" in report["conventions"] and report["settings"]["bootstrap_confidence"] == 0.95
    assert (out / "reliability.png").read_bytes().startswith(b"\x89PNG")

    before = (out / "metrics.json").read_bytes()
    refused = runner.invoke(app, ["evaluate", str(predictions), "--out", str(out)])
    assert refused.exit_code != 0 and isinstance(refused.exception, ConfigError)
    assert (out / "metrics.json").read_bytes() == before

    replaced = runner.invoke(app, ["evaluate", str(predictions), "--out", str(out), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert "ood_auroc_entropy" not in json.loads((out / "metrics.json").read_text())["metrics"]


def test_bad_predictions_file_is_one_line_error_and_exit_code_1(tmp_path, monkeypatch, capsys):
    # The console script's own entry point, in-process: it turns our errors into one line.
    from synthaug.cli.main import main

    bad = tmp_path / "preds.npz"
    bad.write_text("not an archive")
    monkeypatch.setattr(sys, "argv", ["synthaug", "evaluate", str(bad), "--out", str(tmp_path / "eval")])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and stderr.startswith("error:")
    assert str(bad) in stderr and "Traceback" not in stderr
    assert not (tmp_path / "eval").exists()


def _calibrated(seed: int, n_examples: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Predictions calibrated by construction: each label is drawn from its own probabilities."""
    generator = np.random.default_rng(seed)
    logits = generator.normal(scale=2.0, size=(n_examples, 4))
    probs = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    labels = np.array([generator.choice(4, p=row / row.sum()) for row in probs.astype(np.float64)])
    return probs, labels


@pytest.mark.parametrize(("seed", "noted"), [(0, False), (8, True)])
def test_ece_gets_the_basic_interval_and_a_note_when_the_estimate_lies_above_it(tmp_path, seed, noted):
    """Binned ECE overstates the calibration error (here 0, by construction); its interval is the
    basic (pivotal) one, and when the estimate lies above that interval the output says why."""
    from synthaug.metrics import bootstrap_ci, expected_calibration_error

    probs, labels = _calibrated(seed)
    predictions = save_predictions(tmp_path / "test.npz", probs, labels)
    result = CliRunner().invoke(app, ["evaluate", str(predictions), "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["settings"]["bootstrap_methods"] == {"accuracy": "percentile", "ece": "basic", "nll": "percentile"}
    point, low, high = bootstrap_ci(expected_calibration_error, probs, labels, method="basic")
    assert report["confidence_intervals"]["ece"] == pytest.approx({"point": point, "low": max(low, 0.0), "high": high})
    assert (report["metrics"]["ece"] > high) == noted
    assert ("note: ece" in result.output) == noted


def test_user_text_is_printed_as_it_is(tmp_path, monkeypatch, capsys):
    """Rich reads `:train:` as an emoji code; a path (or spec, label) holding one is printed verbatim."""
    from synthaug.cli.main import main

    bad = tmp_path / "fold:train:1.npz"
    bad.write_text("not an archive")
    monkeypatch.setattr(sys, "argv", ["synthaug", "evaluate", str(bad), "--out", str(tmp_path / "eval")])
    with pytest.raises(SystemExit):
        main()
    assert str(bad) in capsys.readouterr().err
