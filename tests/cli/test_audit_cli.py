"""`synthaug audit` and `synthaug filter` on an image folder and on Fashion-MNIST."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import synthaug.cli.main  # noqa: F401  (registers every command)
from synthaug.cli._app import app
from synthaug.errors import ConfigError

FAST = ["--method", "deterministic", "--folds", "3", "--epochs", "3", "--param", "batch_size=32", "--no-progress"]


def _digest(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.mark.slow
def test_audit_then_filter_an_image_folder(tiny_image_folder: Path, tmp_path: Path) -> None:
    before = _digest(tiny_image_folder)
    runner = CliRunner()
    audited = runner.invoke(app, ["audit", str(tiny_image_folder), "--out", str(tmp_path / "audit"), *FAST])
    assert audited.exit_code == 0, audited.output
    assert "90 images" in audited.output and "most suspicious images" in audited.output
    assert {path.name for path in (tmp_path / "audit").iterdir()} >= {
        "scores.jsonl", "classes.csv", "audit.html", "audit.json"}

    filtered = runner.invoke(app, ["filter", str(tiny_image_folder), "--audit", str(tmp_path / "audit"),
                                   "--out", str(tmp_path / "clean"), "--drop-top", "10%"])
    assert filtered.exit_code == 0, filtered.output
    assert "kept 81 images, dropped 9 (9 top score)" in filtered.output
    assert _digest(tiny_image_folder) == before
    assert len((tmp_path / "clean" / "metadata.jsonl").read_text().splitlines()) == 81

    refused = runner.invoke(app, ["filter", str(tiny_image_folder), "--audit", str(tmp_path / "audit"),
                                  "--out", str(tmp_path / "clean"), "--drop-top", "nonsense"])
    assert isinstance(refused.exception, ConfigError) and "--drop-top 'nonsense'" in str(refused.exception)


@pytest.mark.parametrize("command, message", [
    (["filter", "{tmp}/missing", "--audit", "{tmp}", "--out", "{tmp}/clean", "--drop-top", "5"], "no such folder"),
    (["filter", "digits", "--audit", "{tmp}", "--out", "{tmp}/clean", "--drop-top", "5"], "is not an audit folder"),
    (["audit", "digits", "--out", "{tmp}/a", "--reference", "fashion-mnist:test[:5]"],
     "are not classes of the reference"),
])
def test_errors_are_one_line_with_exit_code_1(tmp_path, monkeypatch, capsys, command, message) -> None:
    # The console script's entry point, in process (a subprocess would spend seconds importing).
    monkeypatch.setattr(sys, "argv", ["synthaug", *(part.format(tmp=tmp_path) for part in command)])
    with pytest.raises(SystemExit) as exited:
        synthaug.cli.main.main()
    assert exited.value.code == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: ") and stderr.count("\n") == 1 and message in stderr


@pytest.mark.slow
def test_audit_and_filter_a_fashion_mnist_slice(fashion_mnist_available: Path, tmp_path: Path) -> None:
    spec = "fashion-mnist:test[:200]"  # 100 training images a fold: 10 for validation
    runner = CliRunner()
    audited = runner.invoke(app, ["audit", spec, "--out", str(tmp_path / "audit"), "--method", "deterministic",
                                  "--folds", "2", "--epochs", "1", "--no-progress"])
    assert audited.exit_code == 0, audited.output
    rows = [json.loads(line) for line in (tmp_path / "audit" / "scores.jsonl").read_text().splitlines()]
    assert sorted(int(row["file_name"]) for row in rows) == list(range(200))
    filtered = runner.invoke(app, ["filter", spec, "--audit", str(tmp_path / "audit"), "--out",
                                   str(tmp_path / "clean"), "--drop-top", "20"])
    assert filtered.exit_code == 0, filtered.output
    pngs = sorted((tmp_path / "clean").rglob("*.png"))
    assert len(pngs) == 180 and {path.parent.name for path in pngs} <= {
        "t-shirt-top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"}


@pytest.mark.parametrize("arguments, message", [
    (["--folds", "31"], "fewer images than the 31 cross-validation folds"),
    (["--score-component", "accuracy"], "score_components"),
])
def test_bad_audit_options_are_clear_errors(tiny_image_folder: Path, tmp_path: Path, arguments, message) -> None:
    result = CliRunner().invoke(app, ["audit", str(tiny_image_folder), "--out", str(tmp_path / "a"),
                                      "--method", "deterministic", *arguments])
    assert result.exception is not None and message in str(result.exception)
