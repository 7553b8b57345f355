"""End to end: a tiny study runs, resumes after an interruption, and writes its results."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from synthaug.errors import ConfigError
from synthaug.study import parse_config, run_study
from synthaug.study.results import append_row, read_rows
from synthaug.study.units import plan_units

from helpers.tiny_study import tiny_config_data, write_tiny_folders

# real: deterministic at 3 and 8 + temperature at 8; synthetic: the same; mixed: deterministic at 3.
GROUPS = 7
SEEDS = 2


def test_interrupted_study_resumes_where_it_stopped(tiny_study: dict[str, Any]) -> None:
    assert tiny_study["units_total"] == GROUPS * SEEDS
    assert tiny_study["rows_after_interruption"] == 3
    assert tiny_study["models_after_interruption"] == 3
    assert tiny_study["units_resumed"] == 3
    # The rerun ran (and trained) exactly the units that were missing.
    assert tiny_study["run_in_second_run"] == tiny_study["trained_in_second_run"]
    assert set(tiny_study["run_in_second_run"]).isdisjoint(tiny_study["first_units"])
    assert len(tiny_study["run_in_second_run"]) == GROUPS * SEEDS - 3
    run_dir = Path(tiny_study["run_dir"])
    rows = read_rows(run_dir / "results.jsonl")
    assert len(rows) == GROUPS * SEEDS == len({row["unit_id"] for row in rows})
    assert len(list((run_dir / "cache" / "models").iterdir())) == GROUPS * SEEDS


def test_rows_hold_every_metric_and_their_predictions(tiny_study: dict[str, Any]) -> None:
    run_dir = Path(tiny_study["run_dir"])
    rows = read_rows(run_dir / "results.jsonl")
    for row in rows:
        metrics = row["metrics"]
        for name in (
            "accuracy",
            "ece",
            "nll",
            "brier",
            "aurc",
            "mean_mutual_information",
            "mean_expected_entropy",
            "noise:ood_auroc_entropy",
            "noise:ood_auroc_max_prob",
            "noise:ood_fpr95_entropy",
        ):
            assert name in metrics
        assert 0.0 <= metrics["accuracy"] <= 1.0
        assert set(row["predictions"]) == {"test", "noise"}
        assert all((run_dir / path).is_file() for path in row["predictions"].values())
    mixed = [row for row in rows if row["data"] == "mixed"]
    assert {(row["real_per_class"], row["synthetic_per_class"], row["n_train"]) for row in mixed} == {
        (3, 10, 3 * 3 + 10 * 3)
    }
    # The learnable task is learnt: real data at 8 per class beats chance (1/3) clearly.
    real_8 = [row["metrics"]["accuracy"] for row in rows if row["regime"] == "real" and row["size"] == 8]
    assert min(real_8) > 0.5


def test_run_folder_holds_summary_config_and_environment(tiny_study: dict[str, Any]) -> None:
    run_dir = Path(tiny_study["run_dir"])
    with (run_dir / "summary.csv").open() as handle:
        summary = list(csv.DictReader(handle))
    assert len(summary) == GROUPS
    first = summary[0]
    assert float(first["accuracy_ci_low"]) <= float(first["accuracy_mean"]) <= float(first["accuracy_ci_high"])
    resolved = yaml.safe_load((run_dir / "config.resolved.yaml").read_text())
    assert resolved["seeds"] == [0, 1] and resolved["regimes"][0]["sizes"] == [3, 8]
    environment = json.loads((run_dir / "environment.json").read_text())
    assert environment["seeds"] == [0, 1] and "torch" in environment["packages"]
    analysis = json.loads((run_dir / "analysis.json").read_text())
    assert analysis["headline"]["main"]["size"] == 8
    assert analysis["headline"]["answer"]
    assert {rate["real_per_class"] for rate in analysis["exchange_rates"]} == {3, 8}
    kinds = {comparison["kind"] for comparison in analysis["comparisons"]}
    assert kinds == {"synthetic vs real", "mixed vs real", "method vs baseline"}
    assert (run_dir / "summary.md").read_text().startswith("# Are <b>bars</b> worth drawing?")


def test_rerunning_a_finished_study_trains_nothing(tiny_study: dict[str, Any]) -> None:
    run_dir = Path(tiny_study["run_dir"])
    log = (run_dir / "results.jsonl").read_bytes()
    ran: list[str] = []
    result = run_study(
        parse_config(tiny_study["config"]),
        run_dir,
        on_unit_done=lambda unit, row: ran.append(unit.unit_id),
    )
    assert result.units_resumed == result.units_total and ran == []
    assert (run_dir / "results.jsonl").read_bytes() == log
    assert len(list((run_dir / "cache" / "models").iterdir())) == GROUPS * SEEDS


def test_a_run_folder_refuses_a_different_config(tiny_study: dict[str, Any]) -> None:
    changed = parse_config({**tiny_study["config"], "seeds": [0, 1, 2]})
    with pytest.raises(ConfigError, match=r"different config \(first difference at `seeds`\)"):
        run_study(changed, tiny_study["run_dir"])


def test_plan_units_runs_each_method_at_its_sizes(tmp_path: Path) -> None:
    config = parse_config(tiny_config_data(write_tiny_folders(tmp_path)))
    units = plan_units(config)
    assert len(units) == GROUPS * SEEDS
    assert {(u.regime.name, u.size) for u in units if u.method.name == "temperature"} == {("real", 8), ("synthetic", 8)}


def test_missing_dataset_is_one_line_naming_the_key(tmp_path: Path) -> None:
    folders = write_tiny_folders(tmp_path / "data")
    data = tiny_config_data(folders)
    data["real"] = {**data["real"], "train": str(tmp_path / "nowhere")}
    with pytest.raises(ConfigError) as caught:
        run_study(parse_config(data), tmp_path / "run")
    assert str(caught.value).startswith("real.train: ")
    assert "\n" not in str(caught.value)


def test_sizes_beyond_the_data_are_refused_before_training(tmp_path: Path) -> None:
    data = tiny_config_data(write_tiny_folders(tmp_path / "data"))
    data["regimes"] = [{"name": "real", "data": "real", "sizes": [3, 50]}]
    with pytest.raises(ConfigError, match=r"regimes\[0\]\.sizes: asks for 50 real images per class"):
        run_study(parse_config(data), tmp_path / "run")
    assert not (tmp_path / "run" / "results.jsonl").exists()


def _study_cli(config: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``synthaug study CONFIG --out OUT`` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "synthaug.cli", "study", str(config), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.slow
def test_cli_bad_config_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(
        yaml.safe_dump(
            {"real": {"train": "x", "test": "y"}, "regimes": [{"name": "r", "data": "real", "sizes": [1], "colour": 1}]}
        )
    )
    completed = _study_cli(path, tmp_path / "run")
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    # Only the error line is checked: third-party import warnings may precede it.
    assert completed.stderr.strip().splitlines()[-1] == (
        f"error: {path}: regimes[0].colour: unknown key; valid keys here: "
        "name, data, sizes, source, mix, methods, filter, weights, method_params, augment, targeted"
    )


@pytest.mark.slow
def test_cli_lists_every_config_problem_on_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    regime = {"name": "r", "data": "real", "sizes": [1], "colour": 1}
    path.write_text(yaml.safe_dump({"regimes": [regime], "seeds": [0, "one"], "thraeds": 2, "ood": "x"}))
    completed = _study_cli(path, tmp_path / "run")
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    start = lines.index(f"error: {path}: 5 problems:")  # third-party import warnings may precede it
    assert [line.split(":")[0].strip() for line in lines[start + 1 :]] == [
        "real", "regimes[0].colour", "seeds[1]", "ood", "thraeds"
    ]  # fmt: skip


def test_a_log_line_cut_short_is_dropped(tmp_path: Path) -> None:
    log = tmp_path / "results.jsonl"
    append_row(log, {"unit_id": "a", "source": "nan", "metrics": {"ece": float("nan")}})
    with log.open("a") as handle:
        handle.write('{"unit_id": "b", "val')  # a crash mid-write
    rows = read_rows(log)
    assert [row["unit_id"] for row in rows] == ["a"]
    assert rows[0]["metrics"]["ece"] != rows[0]["metrics"]["ece"]  # a NaN metric survives the round trip
    assert rows[0]["source"] == "nan"  # and a name that reads "nan" stays a name
    append_row(log, {"unit_id": "b"})
    assert [row["unit_id"] for row in read_rows(log)] == ["a", "b"]


@pytest.mark.slow
def test_a_held_out_class_becomes_the_ood_set(tmp_path: Path) -> None:
    data = tiny_config_data(write_tiny_folders(tmp_path / "data"))
    data.update(
        regimes=[{"name": "real", "data": "real", "sizes": [4]}],
        methods=["deterministic"],
        seeds=[0],
        ood=[{"name": "held-out", "holdout_classes": ["bar-top"]}],
    )
    result = run_study(parse_config(data), tmp_path / "run")
    assert result.analysis.classes == ["<script>alert(1)</script>", "bar-middle"]
    assert result.analysis.dataset_sizes["ood:held-out"] == 12  # the held-out class's test images
    assert result.analysis.dataset_sizes["test"] == 24
    (row,) = result.results
    assert row.n_train == 8
    assert 0.0 <= row.metrics["held-out:ood_auroc_entropy"] <= 1.0


@pytest.mark.slow
def test_generation_specs_run_through_the_engine_and_are_cached(tmp_path: Path) -> None:
    from synthaug.data import load_dataset
    from synthaug.generate.ddpm.train import GeneratorTrainingConfig, train_generator
    from synthaug.generate.ddpm.unet import UNetConfig

    folders = write_tiny_folders(tmp_path / "data")
    # A tiny (untrained) class-conditional generator over the tiny classes: enough to check
    # that the study generates through the engine, loads the result and caches it.
    generator = tmp_path / "generator"
    train_generator(
        load_dataset(str(folders["pool"])),
        generator,
        training=GeneratorTrainingConfig(steps=1, batch_size=4, checkpoint_every=1),
        unet=UNetConfig(block_channels=(8,), layers_per_block=1, patch_size=1, norm_groups=4),
    )
    data = tiny_config_data(folders)
    data.update(
        synthetic=[
            {
                "name": "tiny-ddpm",
                "generate": {"backend": "ddpm", "model": str(generator), "per_class": 4, "params": {"steps": 2}},
            }
        ],
        regimes=[{"name": "synthetic", "data": "synthetic", "sizes": [4]}],
        methods=["deterministic"],
        seeds=[0],
        ood=[],
    )
    config = parse_config(data)
    result = run_study(config, tmp_path / "run")
    (generated,) = list((tmp_path / "run" / "cache" / "generated").iterdir())
    manifest = (generated / "metadata.jsonl").read_text().splitlines()
    assert len(manifest) == 4 * 3
    assert result.analysis.generators["tiny-ddpm"].backend == "ddpm"
    assert {json.loads(line)["label"] for line in manifest} == {"bar-top", "bar-middle", "<script>alert(1)</script>"}
    assert {sample.label for sample in result.analysis.samples["tiny-ddpm"]} == {
        "bar-top",
        "bar-middle",
        "<script>alert(1)</script>",
    }
    # A second study with the same spec and cache reuses the folder instead of generating again.
    second = run_study(
        parse_config({**data, "cache_dir": str(tmp_path / "run" / "cache")}),
        tmp_path / "run2",
    )
    assert (generated / "metadata.jsonl").read_text().splitlines() == manifest
    assert second.results[0].model_key == result.results[0].model_key and not second.results[0].trained


def test_study_command_prints_the_summary_and_where_the_report_is(tiny_study: dict[str, Any], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import synthaug.cli.main  # noqa: F401 - registers every command
    from synthaug.cli._app import app

    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(tiny_study["config"]))
    run_dir = Path(tiny_study["run_dir"])
    result = CliRunner().invoke(app, ["study", str(path), "--out", str(run_dir), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# Are <b>bars</b> worth drawing?")
    assert f"report: {(run_dir / 'report.html').resolve()}" in result.output


def test_a_temperature_unit_calibrates_the_deterministic_units_network(tiny_study: dict[str, Any]) -> None:
    # Post-hoc units start from the deterministic unit's cached model (or train the same one).
    from safetensors.torch import load_file

    run_dir = Path(tiny_study["run_dir"])
    rows = read_rows(run_dir / "results.jsonl")
    deterministic = {(r["regime"], r["size"], r["seed"]): r for r in rows if r["method"] == "deterministic"}
    calibrated = [r for r in rows if r["method"] == "temperature"]
    assert calibrated
    for row in calibrated:
        base_dir = run_dir / deterministic[(row["regime"], row["size"], row["seed"])]["model_dir"]
        base = load_file(base_dir / "weights.safetensors")
        tensors = load_file(run_dir / row["model_dir"] / "weights.safetensors")
        assert tensors.keys() - {"temperature"} == {f"base.{name}" for name in base}
        for name, value in base.items():
            assert tensors[f"base.{name}"].equal(value), name


@pytest.mark.slow
def test_a_release_reuses_the_cache_unless_it_changes_a_default(tmp_path: Path, monkeypatch) -> None:
    """Models are keyed on resolved parameters, not the version: a new version with the same
    defaults trains nothing; a changed default retrains only the units it touches, and resuming
    a run folder whose rows were computed under the old default is refused."""
    import synthaug
    from synthaug.methods.temperature import TemperatureScaling

    data = tiny_config_data(write_tiny_folders(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
    data.update(regimes=[{"name": "real", "data": "real", "sizes": [8]}], synthetic=[], inspect="off", ood=[],
                methods=["deterministic", "temperature"], seeds=[0])  # fmt: skip
    first = run_study(parse_config(data), tmp_path / "first")
    assert [r.trained for r in first.results] == [True, True]
    key_files = [Path(r.model_dir) / "key.json" for r in first.results]
    recorded = json.loads(key_files[0].read_text())
    assert recorded["synthaug_version"] == synthaug.__version__  # recorded for provenance, not keyed on
    written = [path.stat().st_mtime_ns for path in key_files]

    monkeypatch.setattr(synthaug, "__version__", "99.0.0")  # a release that changes no default
    second = run_study(parse_config(data), tmp_path / "second")
    assert [r.trained for r in second.results] == [False, False]
    assert [r.model_key for r in second.results] == [r.model_key for r in first.results]
    assert [path.stat().st_mtime_ns for path in key_files] == written

    monkeypatch.setitem(TemperatureScaling.__init__.__kwdefaults__, "max_iter", 50)  # one that changes one
    third = run_study(parse_config(data), tmp_path / "third")
    assert {r.key.method: r.trained for r in third.results} == {"deterministic": False, "temperature": True}
    assert third.results[1].params_key != first.results[1].params_key
    with pytest.raises(ConfigError, match=r"temperature/seed=0 was computed with other resolved parameters.*new --out"):
        run_study(parse_config(data), tmp_path / "first")
    assert len(read_rows(tmp_path / "first" / "results.jsonl")) == 2


def test_model_keys_leave_out_unset_settings_so_a_new_optional_setting_keeps_them() -> None:
    from synthaug.methods import make_method
    from synthaug.study.units import method_identity

    identity = method_identity(make_method("deterministic"))
    # `max_steps` came in a release after models were cached; unset (None), it is not in the key.
    assert "max_steps" not in identity["params"] and "max_steps" not in identity["training"]
    assert all(value is not None for value in (*identity["params"].values(), *identity["training"].values()))
    assert method_identity(make_method("deterministic", max_steps=5))["training"]["max_steps"] == 5
