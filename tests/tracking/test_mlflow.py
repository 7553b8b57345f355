"""MLflow tracking of a study, against a real local MLflow store (SQLite, no server).

A two-unit version of the tiny study (``tests/helpers/tiny_study.py``) is interrupted after its
first unit with tracking on, then finished through ``synthaug study --track mlflow``, then
rerun: the store must hold one study run with each unit logged exactly once, nested under it,
with what the issue asks for (config, method parameters, seed, data fingerprints, metrics,
training curves, the model folder; the analysis, summary and report on the study run).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

mlflow = pytest.importorskip("mlflow")

import synthaug.cli.main  # noqa: E402,F401  (registers the commands)
from synthaug.cli._app import app  # noqa: E402
from synthaug.study import parse_config, run_study  # noqa: E402
from synthaug.study.results import read_results  # noqa: E402
from synthaug.tracking.mlflow import TAG_UNIT, MLflowTracker, default_tracking_uri  # noqa: E402

from helpers.tiny_study import StopStudy, tiny_config_data, write_tiny_folders  # noqa: E402


def two_unit_config(folders: dict[str, Path]) -> dict:
    data = tiny_config_data(folders)
    data.update(regimes=[{"name": "real", "data": "real", "sizes": [8]}], methods=["deterministic"],
                ood=[{"name": "noise", "data": str(folders["ood"])}])
    data["tracking"] = {"mlflow": {"experiment": "tiny"}}
    return data


def unit_runs(client, experiment_id: str, study_run_id: str) -> list:
    return client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{study_run_id}'")


@pytest.mark.slow  # MLflow creates its SQLite schema (about 10 s) and the study runs three times
def test_study_logs_each_unit_once_to_a_real_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    folders = write_tiny_folders(tmp_path / "data")
    data = two_unit_config(folders)
    config_path = tmp_path / "study.yaml"
    config_path.write_text(yaml.safe_dump(data))
    run_dir = tmp_path / "runs" / "tiny"

    # 1. Tracked from Python, interrupted after the first unit (as Ctrl-C would).
    tracker = MLflowTracker(run_dir, experiment="tiny")

    def log_then_stop(unit, result) -> None:
        tracker.log_unit(unit, result)
        raise StopStudy

    with pytest.raises(StopStudy):
        run_study(parse_config(data), run_dir, on_unit_done=log_then_stop)
    assert len(tracker.logged_units) == 1

    # 2. Resumed by the command line: the second unit and the study's files are logged.
    result = CliRunner().invoke(app, ["study", str(config_path), "--out", str(run_dir), "--no-progress",
                                      "--track", "mlflow"])
    assert result.exit_code == 0, result.output

    # The default store: SQLite in mlruns/ beside the run folder.
    uri = default_tracking_uri(run_dir)
    assert uri == f"sqlite:///{tmp_path / 'runs' / 'mlruns' / 'mlflow.db'}"
    assert (tmp_path / "runs" / "mlruns" / "mlflow.db").is_file()
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tiny")
    (study_run,) = client.search_runs([experiment.experiment_id], "tags.`synthaug.kind` = 'study'")
    assert study_run.info.status == "FINISHED" and study_run.data.tags["synthaug.run_dir"] == str(run_dir.resolve())
    assert "real" in study_run.data.tags["mlflow.note.content"]  # the Markdown summary
    study_files = {item.path for item in client.list_artifacts(study_run.info.run_id)}
    assert {"analysis.json", "summary.md", "summary.csv", "report.html", "config.resolved.yaml"} <= study_files

    rows = {row.unit_id: row for row in read_results(run_dir / "results.jsonl")}
    runs = unit_runs(client, experiment.experiment_id, study_run.info.run_id)
    assert sorted(run.data.tags[TAG_UNIT] for run in runs) == sorted(rows)  # each unit once
    for run in runs:
        row = rows[run.data.tags[TAG_UNIT]]
        params, metrics = run.data.params, run.data.metrics
        assert run.info.status == "FINISHED"
        assert params["seed"] == str(row.seed) and params["regime"] == "real" and params["method"] == "deterministic"
        assert params["method.epochs"] == "3" and params["method.learning_rate"] == "0.01"
        assert params["backbone.name"] == "cnn" and params["backbone.channels"] == "[4]"
        assert len(params["train_fingerprint"]) == 64 and len(params["val_fingerprint"]) == 64
        assert metrics["accuracy"] == pytest.approx(row.metrics["accuracy"])
        assert metrics["noise/ood_auroc_max_prob"] == pytest.approx(row.metrics["noise:ood_auroc_max_prob"])
        curve = client.get_metric_history(run.info.run_id, "train_loss")
        assert sorted(point.step for point in curve) == [1, 2, 3]  # one point per epoch
        model_files = {Path(item.path).name for item in client.list_artifacts(run.info.run_id, "model")}
        assert {"config.json", "weights.safetensors", "key.json"} <= model_files

    # 3. Rerunning the finished study logs nothing twice.
    again = CliRunner().invoke(app, ["study", str(config_path), "--out", str(run_dir), "--no-progress"])
    assert again.exit_code == 0, again.output  # tracking on through the config alone
    assert len(unit_runs(client, experiment.experiment_id, study_run.info.run_id)) == len(rows)
    assert len(client.search_runs([experiment.experiment_id], "tags.`synthaug.kind` = 'study'")) == 1


def test_tracking_is_not_part_of_the_study_identity(tmp_path: Path) -> None:
    from synthaug.study.config import config_to_dict

    folders = write_tiny_folders(tmp_path / "data")
    data = two_unit_config(folders)
    tracked = parse_config(data)
    untracked = parse_config({key: value for key, value in data.items() if key != "tracking"})
    assert config_to_dict(tracked) == config_to_dict(untracked)


def test_an_unknown_tracker_is_one_line(tmp_path: Path) -> None:
    folders = write_tiny_folders(tmp_path / "data")
    config_path = tmp_path / "study.yaml"
    config_path.write_text(yaml.safe_dump(two_unit_config(folders)))
    result = CliRunner().invoke(app, ["study", str(config_path), "--out", str(tmp_path / "run"), "--track", "wandb"])
    assert result.exit_code == 1 and "--track wandb: unknown tracker" in str(result.exception)
