"""Studies through the execution layer: bit-identical metrics with one process, two local
workers and Ray under the default settings (every unit runs with the config's fixed torch
thread count, whatever its engine gave the worker); a worker killed mid-study costs only its
unit; the driver is the only writer of results.jsonl, so every unit is there exactly once."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from synthaug.execution import make_executor
from synthaug.execution.local import LocalExecutor
from synthaug.study import parse_config, run_study
from synthaug.study.results import read_results

from helpers.tiny_study import tiny_config_data, write_tiny_folders


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    base = tmp_path_factory.mktemp("tiny-execution")
    return base, tiny_config_data(write_tiny_folders(base / "data"))


@pytest.fixture(scope="module")
def in_process(tiny) -> dict[str, dict[str, float]]:
    """Metrics by unit of the tiny study run in this process (today's behaviour)."""
    base, data = tiny
    result = run_study(parse_config(data), base / "one", executor=make_executor(workers=1))
    return {r.unit_id: r.metrics for r in result.results}


def assert_same_metrics(run_dir: Path, expected: dict[str, dict[str, float]]) -> None:
    """Every unit logged once, with exactly the expected metrics (not merely close ones), run
    with the default single torch thread."""
    logged = read_results(run_dir / "results.jsonl")
    assert sorted(r.unit_id for r in logged) == sorted(expected)  # every unit exactly once
    for result in logged:
        np.testing.assert_equal(result.metrics, expected[result.unit_id], err_msg=result.unit_id)
        assert result.threads == 1
    assert json.loads((run_dir / "environment.json").read_text())["torch_threads"] == 1


@pytest.mark.slow
def test_two_local_workers_give_the_same_metrics_even_when_one_is_killed(tiny, in_process):
    """A worker killed mid-study costs only its unit, which runs again on a fresh worker."""
    base, data = tiny
    killed: list[int] = []
    # Workers given 2 torch threads: the units still run with the config's 1.
    with LocalExecutor(workers=2, threads_per_worker=2) as executor:

        def kill_a_busy_worker_once(unit, result) -> None:
            if not killed and executor.worker_pids():
                pid = next(iter(executor.worker_pids()))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        run_study(parse_config(data), base / "killed", executor=executor, on_unit_done=kill_a_busy_worker_once)
    assert killed
    assert_same_metrics(base / "killed", in_process)


def test_ray_gives_the_same_metrics(tiny, in_process, ray_cluster):
    base, data = tiny
    config = parse_config({**data, "execution": {"ray": {"address": "auto"}}})
    run_study(config, base / "ray")
    assert_same_metrics(base / "ray", in_process)


@pytest.mark.slow
def test_targeted_units_sharing_a_generation_folder_run_on_workers(tmp_path):
    """Targeted units generate into one folder per regime source, which its lock lets one process
    write at a time: on workers they run one after another and the study completes. (Whether two
    would collide is a race that these tiny units rarely lose; the one-at-a-time order is the
    guarantee.)"""
    from helpers.tiny_targeted import targeted_config_data, tiny_generator

    folders = write_tiny_folders(tmp_path / "data")
    data = {**targeted_config_data(folders, tiny_generator(tmp_path / "generator", folders["pool"])), "inspect": "off"}
    with LocalExecutor(workers=2) as executor:
        result = run_study(parse_config(data), tmp_path / "run", executor=executor)
    assert len(result.results) == 4 and {r.key.regime for r in result.results} == {"targeted", "uniform"}
