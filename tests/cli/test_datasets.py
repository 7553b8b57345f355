"""`synthaug datasets`: the listing, `--check`, and one-line errors."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

import synthaug.cli.main  # noqa: F401  (registers every command)
from synthaug.cli._app import app


def test_lists_builtin_datasets():
    result = CliRunner().invoke(app, ["datasets"])
    assert result.exit_code == 0, result.output
    for name in ("fashion-mnist:train", "fashion-mnist:test", "digits", "60,000", "1,797"):
        assert name in result.output


def test_check_reports_counts(tiny_image_folder):
    result = CliRunner().invoke(app, ["datasets", "--check", str(tiny_image_folder)])
    assert result.exit_code == 0, result.output
    assert "90 good images in 3 classes" in result.output and "horizontal" in result.output
    assert "no bad items" in result.output


def test_check_lists_bad_files_and_fails(tiny_image_folder):
    (tiny_image_folder / "vertical" / "broken.png").write_bytes(b"")
    result = CliRunner().invoke(app, ["datasets", "--check", str(tiny_image_folder)])
    assert result.exit_code == 1
    assert "89 good images" not in result.output  # the broken file is extra, not one of the 90
    assert "1 bad item(s)" in result.output and "broken.png: file is empty (0 bytes)" in result.output
    assert (tiny_image_folder / "vertical" / "broken.png").exists()


def test_missing_folder_is_one_line_on_stderr(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["synthaug", "datasets", "--check", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit) as exited:
        synthaug.cli.main.main()
    assert exited.value.code == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: ") and stderr.count("\n") == 1
    assert "nowhere: no such folder" in stderr
