"""``synthaug study`` / ``demo``: the CLI runs the study, then draws its report; without a
terminal it prints one plain progress line per finished unit."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import synthaug.cli.main  # noqa: F401 - registers every command
from synthaug.cli._app import app

from helpers.tiny_study import tiny_config_data, write_tiny_folders


def test_default_run_folder_matches_the_library() -> None:
    from synthaug.cli.demo import DEFAULT_RUN_DIR
    from synthaug.study import demo

    assert DEFAULT_RUN_DIR == demo.DEFAULT_RUN_DIR


@pytest.mark.slow
def test_study_without_a_terminal_prints_a_line_per_unit_then_writes_the_report(tmp_path: Path) -> None:
    data = tiny_config_data(write_tiny_folders(tmp_path / "data"))
    data.update(regimes=[{"name": "real", "data": "real", "sizes": [3]}], methods=["deterministic"], ood=[])
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(data))
    run_dir = tmp_path / "run"
    # One worker: units finish in grid order, which the lines below rely on.
    result = CliRunner().invoke(app, ["study", str(config), "--out", str(run_dir), "--workers", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert "[study] started (2 units)" in lines
    assert any(line.startswith("[study] 1/2 units (real/n=3/cnn/deterministic/seed=0) in ") for line in lines)
    assert any(line.startswith("[study] 2/2 units (real/n=3/cnn/deterministic/seed=1) in ") for line in lines)
    assert "\r" not in result.stderr
    assert result.stdout.startswith("# Are <b>bars</b> worth drawing?")
    assert (run_dir / "report.html").is_file()
    assert f"report: {(run_dir / 'report.html').resolve()}" in result.stdout
