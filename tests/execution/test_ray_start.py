"""A study on a cluster started with ``ray start`` from another folder, with a relative ``--out``:
everything lands under the user's run folder, nothing under the folder ``ray start`` ran in,
and the numbers are those of a local run; where the workers do not see the run folder, units
send their files back through the object store (or keep models in ``storage:``), and
generation refuses in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from synthaug.execution import make_executor
from synthaug.study import parse_config, run_study
from synthaug.study.results import read_results

from helpers.ray_start import can_hide_folders, environment, ray_start
from helpers.tiny_study import tiny_config_data, write_tiny_folders

pytest.importorskip("ray")


def small_config(folders: dict[str, Path], **overrides: Any) -> dict[str, Any]:
    """Four units: two regimes x (deterministic, and temperature on its model), one seed."""
    regimes = [{"name": "real", "data": "real", "sizes": [3]}, {"name": "synthetic", "data": "synthetic", "sizes": [3]}]
    return tiny_config_data(
        folders, seeds=[0], inspect="off", methods=["deterministic", "temperature"], regimes=regimes, **overrides
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The data folders, the config, and the metrics by unit of a local run in this process."""
    base = tmp_path_factory.mktemp("ray-start")
    folders = write_tiny_folders(base / "data")
    data = small_config(folders)
    result = run_study(parse_config(data), base / "local", executor=make_executor(workers=1))
    return {"base": base, "folders": folders, "data": data, "local": {r.unit_id: r.metrics for r in result.results}}


@pytest.fixture(scope="module")
def cluster(study: dict[str, Any]) -> Any:
    """A 2-CPU head node started by ``ray start`` in its own folder (``cluster/``)."""
    cwd, scratch = study["base"] / "cluster", study["base"] / "cluster-tmp"
    cwd.mkdir()
    scratch.mkdir()
    with ray_start(cwd, scratch) as address:
        yield address, cwd


def synthaug_cli(arguments: list[str], cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """``synthaug ARGUMENTS`` as a user runs it, in ``cwd`` (its temp folder beside ``cwd``)."""
    scratch = cwd.with_name(f"{cwd.name}-tmp")
    scratch.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "synthaug.cli", *arguments], cwd=cwd,
                          env={**environment(scratch), **variables}, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def user_folder(study: dict[str, Any], config: dict[str, Any]) -> Path:
    """A fresh working directory holding the config as ``s.yaml``."""
    folder = study["base"] / f"user-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    (folder / "s.yaml").write_text(yaml.safe_dump(config))
    return folder


def run_relative(folder: Path, address: str, *extra: str) -> subprocess.CompletedProcess[str]:
    result = synthaug_cli(["study", "s.yaml", "--out", "run", "--ray", address, "--no-progress", "--no-report", *extra],
                          folder)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def assert_local_metrics(run_dir: Path, local: dict[str, dict[str, float]]) -> None:
    logged = read_results(run_dir / "results.jsonl")
    assert sorted(r.unit_id for r in logged) == sorted(local)
    for result in logged:
        assert result.metrics == pytest.approx(local[result.unit_id], rel=1e-4, abs=1e-6, nan_ok=True), result.unit_id


def unit_files(run_dir: Path) -> str:
    return json.loads((run_dir / "environment.json").read_text())["unit_files"]


def rows(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_relative_out_lands_in_the_users_folder_not_where_ray_started(study, cluster):
    address, cluster_cwd = cluster
    folder = user_folder(study, study["data"])
    run_relative(folder, address)
    run_dir = folder / "run"
    assert_local_metrics(run_dir, study["local"])
    for row in rows(run_dir):  # every file the row names is in the user's run folder
        assert (run_dir / row["model_dir"] / "key.json").is_file()
        assert all((run_dir / path).is_file() for path in row["predictions"].values())
    assert list(cluster_cwd.iterdir()) == []  # nothing under the folder `ray start` ran in
    assert unit_files(run_dir) == "written in place"  # the workers saw the folder, by its absolute path


@pytest.mark.slow
def test_storage_keeps_models_and_the_object_store_brings_predictions_back(study, cluster):
    """With `storage:` (a relative path, resolved on the driver) models go there, predictions
    come back by value into the run folder's cache; a rerun finds the models in the storage."""
    address, cluster_cwd = cluster
    folder = user_folder(study, {**study["data"], "execution": {"ray": {"address": address, "storage": "store"}}})
    synthaug_cli(["study", "s.yaml", "--out", "run", "--no-progress", "--no-report"], folder).check_returncode()
    run_dir = folder / "run"
    assert_local_metrics(run_dir, study["local"])
    first = rows(run_dir)
    for row in first:
        assert row["model_dir"] == str(folder / "store" / "models" / row["model_key"])
        assert (Path(row["model_dir"]) / "key.json").is_file()
        assert all((run_dir / path).is_file() for path in row["predictions"].values())
    assert not (run_dir / "cache" / "models").exists()
    assert unit_files(run_dir) == "sent back through the object store"
    assert list(cluster_cwd.iterdir()) == []

    # Resume after losing a row: the unit runs again and reuses its stored model.
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    (run_dir / "results.jsonl").write_text("\n".join(lines[1:]) + "\n")
    synthaug_cli(["study", "s.yaml", "--out", "run", "--no-progress", "--no-report"], folder).check_returncode()
    again = {row["unit_id"]: row for row in rows(run_dir)}
    assert len(again) == len(first) == len(rows(run_dir))
    assert again[first[0]["unit_id"]]["trained"] is False
    assert_local_metrics(run_dir, study["local"])


@pytest.mark.slow
@pytest.mark.skipif(not can_hide_folders(), reason="needs unprivileged mount namespaces (unshare -rm)")
def test_workers_that_do_not_see_the_run_folder(study):
    """The user's folder exists only for the driver (the node's processes see an empty tmpfs in
    its place): the probe finds out, the study's files come back through the object store, and
    `synthaug generate --ray` refuses in one line naming the shared file system."""
    base = study["base"]
    folder = user_folder(study, study["data"])
    cwd, scratch = base / "hidden-cluster", base / "hidden-cluster-tmp"
    cwd.mkdir()
    scratch.mkdir()
    with ray_start(cwd, scratch, hide=folder) as address:
        run_relative(folder, address)
        arguments = ["generate", "--out", "gen", "--classes", "a,b", "--per-class", "1", "--backend", "openai",
                     "--model", "dall-e-2", "--size", "256x256", "--ray", address]  # fmt: skip
        # (refused before any image is asked for: the server address leads nowhere)
        refused = synthaug_cli(arguments, folder, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    run_dir = folder / "run"
    assert_local_metrics(run_dir, study["local"])
    assert unit_files(run_dir) == "sent back through the object store"
    for row in rows(run_dir):  # the models came back by value too
        assert (run_dir / row["model_dir"] / "key.json").is_file()
    assert list(cwd.iterdir()) == []
    assert refused.returncode != 0
    message = refused.stderr.strip()
    assert "\n" not in message and "the Ray workers do not see this folder" in message
    assert "file system every node mounts" in message


def test_the_probe_reads_a_file_on_every_node(ray_cluster, tmp_path):
    """A real task on each node of the session cluster: a missing probe file is missed on both
    nodes; the file the driver wrote is read on both; answers are cleaned up."""
    import ray

    from synthaug.execution.ray_engine import RayExecutor, nodes_not_reading

    nodes = sorted(node["NodeID"] for node in ray.nodes() if node["Alive"])
    assert sorted(nodes_not_reading(tmp_path / "missing" / "probe", "token")) == nodes
    (tmp_path / "probe").write_text("token")
    assert nodes_not_reading(tmp_path / "probe", "token") == []
    assert sorted(nodes_not_reading(tmp_path / "probe", "another token")) == nodes
    assert [path.name for path in tmp_path.iterdir()] == ["probe"]
    assert RayExecutor("auto").sees_folder(tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["probe"]
