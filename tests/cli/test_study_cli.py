"""``synthaug study`` / ``demo``: the CLI runs the study, then draws its report; without a
terminal it prints one plain progress line per finished unit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


def _study_command(config: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "synthaug.cli", "study", str(config), "--out", str(run_dir),
            "--workers", "1", "--no-progress", "--no-report"]  # fmt: skip


@pytest.mark.slow
def test_a_second_study_on_one_folder_refuses_and_a_killed_one_leaves_no_lock(tmp_path: Path) -> None:
    """Two real ``synthaug study`` processes on one --out: the second refuses in one line while
    the first holds the folder; after the first is killed (SIGKILL) a rerun finishes the study
    with each unit logged once."""
    data = tiny_config_data(write_tiny_folders(tmp_path / "data"))
    data.update(regimes=[{"name": "real", "data": "real", "sizes": [3]}], methods=["deterministic"], ood=[])
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(data))
    run_dir = tmp_path / "run"
    first = subprocess.Popen(_study_command(config, run_dir), env=os.environ.copy(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        # The resolved config is written with the lock held: from then on the folder is taken.
        while not (run_dir / "config.resolved.yaml").exists() and first.poll() is None:
            assert time.monotonic() < deadline, "the first study never started"
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)  # paused with the lock held, so the second surely meets it
        assert first.poll() is None, "the first study finished before the second could start"
        second = subprocess.run(_study_command(config, run_dir), env=os.environ.copy(),
                                capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            f"error: another synthaug process is writing to {run_dir}; wait for it to finish or stop it"
        ]
    finally:
        first.send_signal(signal.SIGKILL)  # a killed holder: the system drops its lock
        first.wait()
    # The next run (in this process, to save an interpreter's start-up) finds the folder free.
    third = CliRunner().invoke(app, _study_command(config, run_dir)[3:])
    assert third.exit_code == 0, third.output
    from synthaug.study.results import read_rows

    unit_ids = [row["unit_id"] for row in read_rows(run_dir / "results.jsonl")]
    assert sorted(unit_ids) == ["real/n=3/cnn/deterministic/seed=0", "real/n=3/cnn/deterministic/seed=1"]
