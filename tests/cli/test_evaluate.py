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
