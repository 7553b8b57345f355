"""``synthaug train`` -> ``synthaug predict`` -> ``synthaug evaluate`` round trips."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import synthaug.cli.main  # registers every command
from synthaug.cli._app import app
from synthaug.errors import ConfigError, DataError
from synthaug.methods import load_method
from synthaug.metrics import load_predictions

runner = CliRunner()
# A CNN small enough for a few seconds of training on the 16x16 or 28x28 test images.
TINY_CNN = ["--backbone-option", "channels=[8,16]", "--backbone-option", "hidden=32"]


def invoke(*args: str | Path) -> None:
    result = runner.invoke(app, [str(arg) for arg in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_round_trip_on_an_image_folder(tiny_image_folder: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    invoke("train", "--train", tiny_image_folder, "--method", "mc-dropout", "--param", "num_samples=3",
           "--epochs", "8", "--learning-rate", "0.003", "--batch-size", "16", "--seed", "1", *TINY_CNN, "--out", model)
    assert {p.name for p in model.iterdir()} == {"config.json", "weights.safetensors", "training.json"}
    config = json.loads((model / "config.json").read_text())
    assert config["method"] == "mc-dropout" and config["hyperparameters"]["num_samples"] == 3
    assert config["hyperparameters"]["epochs"] == 8 and config["backbone"]["channels"] == [8, 16]

    invoke("predict", "--model", model, "--data", tiny_image_folder, "--out", tmp_path / "preds.npz")
    probs, labels, classes = load_predictions(tmp_path / "preds.npz")
    assert probs.shape == (3, 90, 3) and classes == ["diagonal", "horizontal", "vertical"]
    assert (probs.mean(0).argmax(1) == labels).mean() > 0.8

    invoke("evaluate", tmp_path / "preds.npz", "--out", tmp_path / "eval")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert metrics["accuracy"] == pytest.approx((probs.mean(0).argmax(1) == labels).mean())


def test_mixed_training_sets_and_class_matching_by_name(tiny_image_folder: Path, tmp_path: Path) -> None:
    # A second set holding two of the three classes: labels are matched by class name.
    partial = tmp_path / "partial"
    for name in ["vertical", "horizontal"]:
        shutil.copytree(tiny_image_folder / name, partial / name)
    model = tmp_path / "model"
    with pytest.raises(Exception, match="class"):  # mixing needs the same class names
        runner.invoke(app, ["train", "--train", str(tiny_image_folder), "--train", str(partial),
                            "--out", str(model)], catch_exceptions=False)
    invoke("train", "--train", tiny_image_folder, "--train", tiny_image_folder, "--weight", "1", "--weight", "0.5",
           "--epochs", "1", *TINY_CNN, "--out", model)
    provenance = json.loads((model / "training.json").read_text())
    assert provenance["weights"] == [1.0, 0.5] and [t["images"] for t in provenance["train"]] == [90, 90]

    invoke("predict", "--model", model, "--data", partial, "--out", tmp_path / "partial.npz")
    _, labels, classes = load_predictions(tmp_path / "partial.npz")
    names = [classes[label] for label in labels]
    assert sorted(set(names)) == ["horizontal", "vertical"] and len(names) == 60


def test_existing_outputs_are_never_overwritten(tiny_image_folder: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    invoke("train", "--train", tiny_image_folder, "--epochs", "1", *TINY_CNN, "--out", model)
    saved = (model / "weights.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="--overwrite"):
        runner.invoke(app, ["train", "--train", str(tiny_image_folder), "--epochs", "1", *TINY_CNN,
                            "--seed", "5", "--out", str(model)], catch_exceptions=False)
    assert (model / "weights.safetensors").read_bytes() == saved
    invoke("train", "--train", tiny_image_folder, "--epochs", "1", *TINY_CNN, "--seed", "5", "--out", model,
           "--overwrite")
    assert (model / "weights.safetensors").read_bytes() != saved
    assert load_method(model).seed == 5

    (tmp_path / "preds.npz").write_bytes(b"precious")
    with pytest.raises(ConfigError, match="--overwrite"):
        runner.invoke(app, ["predict", "--model", str(model), "--data", str(tiny_image_folder),
                            "--out", str(tmp_path / "preds.npz")], catch_exceptions=False)
    assert (tmp_path / "preds.npz").read_bytes() == b"precious"


def test_bad_input_is_one_line_error_and_exit_code_1(tmp_path: Path, monkeypatch, capsys) -> None:
    arguments = ["train", "--train", str(tmp_path / "missing"), "--param", "num_members",
                 "--out", str(tmp_path / "model")]
    monkeypatch.setattr(sys, "argv", ["synthaug", *arguments])
    with pytest.raises(SystemExit) as exit_info:
        synthaug.cli.main.main()
    assert exit_info.value.code == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: --param 'num_members': expected KEY=VALUE")
    assert len(stderr.strip().splitlines()) == 1 and not (tmp_path / "model").exists()


@pytest.mark.slow
def test_round_trip_on_fashion_mnist(fashion_mnist_available: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    invoke("train", "--train", "fashion-mnist:train[:600]", "--epochs", "3", "--learning-rate", "0.003",
           "--batch-size", "32", *TINY_CNN, "--out", model)
    invoke("predict", "--model", model, "--data", "fashion-mnist:test[:200]", "--out", tmp_path / "test.npz")
    probs, labels, classes = load_predictions(tmp_path / "test.npz")
    assert probs.shape == (1, 200, 10) and classes[0] == "T-shirt/top"
    invoke("evaluate", tmp_path / "test.npz", "--out", tmp_path / "eval")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert metrics["accuracy"] > 0.55  # chance is 0.10; 600 images, 3 epochs
    assert np.isfinite(metrics["nll"]) and metrics["ece"] < 0.3


@pytest.mark.slow
def test_out_of_distribution_predictions_feed_evaluate_ood(tiny_image_folder: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    invoke("train", "--train", tiny_image_folder, "--method", "mc-dropout", "--param", "num_samples=4",
           "--epochs", "4", "--batch-size", "16", "--seed", "0", *TINY_CNN, "--out", model)
    invoke("predict", "--model", model, "--data", tiny_image_folder, "--out", tmp_path / "test.npz")
    # `digits` has other classes: refused without --ood, with a hint, and nothing written.
    with pytest.raises(DataError, match="unknown to the model .*; pass --ood"):
        runner.invoke(app, ["predict", "--model", str(model), "--data", "digits", "--out", str(tmp_path / "ood.npz")],
                      catch_exceptions=False)
    assert not (tmp_path / "ood.npz").exists()
    invoke("predict", "--model", model, "--data", "digits", "--ood", "--out", tmp_path / "ood.npz")
    ood = load_predictions(tmp_path / "ood.npz", require_labels=False)
    assert ood.labels is None and ood.probs.shape == (4, 1797, 3)
    assert ood.classes == ["diagonal", "horizontal", "vertical"]
    with pytest.raises(Exception, match="missing array.*labels"):  # not usable as in-distribution data
        load_predictions(tmp_path / "ood.npz")

    invoke("evaluate", tmp_path / "test.npz", "--ood", tmp_path / "ood.npz", "--out", tmp_path / "eval")
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert 0.0 <= metrics["ood_auroc_mutual_information"] <= 1.0
    assert 0.0 <= metrics["ood_auroc_max_prob"] <= 1.0


def test_max_steps_trains_that_many_steps_and_refuses_epochs_beside_it(tiny_image_folder: Path, tmp_path: Path) -> None:
    from torch.optim.optimizer import register_optimizer_step_post_hook

    model = tmp_path / "model"
    steps: list[int] = []
    handle = register_optimizer_step_post_hook(lambda *_: steps.append(1))
    try:
        invoke("train", "--train", tiny_image_folder, "--max-steps", "5", "--batch-size", "16", *TINY_CNN,
               "--out", model)
    finally:
        handle.remove()
    assert len(steps) == 5
    method = load_method(model)
    assert method.max_steps == 5 and method.epochs is None
    with pytest.raises(ConfigError, match="epochs=2 and max_steps=5 both set the training length"):
        runner.invoke(app, ["train", "--train", str(tiny_image_folder), "--max-steps", "5", "--epochs", "2",
                            *TINY_CNN, "--out", str(tmp_path / "other")], catch_exceptions=False)
