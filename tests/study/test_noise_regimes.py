"""Filtered, audit-weighted and robust-loss regimes: run end to end, labelled, cached, resumed."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synthaug.audit import drop_reasons
from synthaug.audit.filter import read_audit
from synthaug.errors import ConfigError
from synthaug.report import build_report
from synthaug.study import parse_config, run_study
from synthaug.study.cache import StudyCache
from synthaug.study.data import prepare_study_data, training_set
from synthaug.study.records import UnitResult
from synthaug.study.results import read_rows
from synthaug.study.units import Unit

from helpers.tiny_study import StopStudy, tiny_config_data, write_tiny_folders

TINY_CNN = {"image_size": 8, "channels": [4], "hidden": 8}
FILTERED = "synthetic (filtered 20 %)"
GCE = "synthetic (GCE)"
WEIGHTED_MIX = "real+synthetic (audit-weighted)"


def noise_config(folders: dict[str, Path], cache_dir: Path, drop_top: float = 0.2) -> dict[str, Any]:
    """The tiny study with a plain, a filtered and a robust-loss synthetic regime, and an
    audit-weighted mixed regime: 10 units of the baseline method."""
    return tiny_config_data(
        folders,
        regimes=[
            {"name": "real", "data": "real", "sizes": [3]},
            {"name": "synthetic", "data": "synthetic", "sizes": [3]},
            {"name": FILTERED, "data": "synthetic", "sizes": [3], "filter": {"drop_top": drop_top}},
            {"name": GCE, "data": "synthetic", "sizes": [3], "method_params": {"loss": "generalized_cross_entropy"}},
            {"name": WEIGHTED_MIX, "data": "mixed", "sizes": [3], "synthetic_per_class": 8, "synthetic_weight": 0.5,
             "weights": "audit"},
        ],
        methods=["deterministic"],
        audit={"folds": 3, "method": "deterministic", "epochs": 3, "report_per_class": 1,
               "method_options": {"batch_size": 8, "val_fraction": 0.25, "backbone_options": TINY_CNN}},
        cache_dir=str(cache_dir),
    )


@pytest.fixture(scope="module")
def noise_study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The study interrupted after 4 units and resumed; then rerun into a new folder, sharing
    the cache, with the filter changed."""
    base = tmp_path_factory.mktemp("noise-study")
    folders = write_tiny_folders(tmp_path_factory.getbasetemp())
    cache_dir = base / "cache"
    config = parse_config(noise_config(folders, cache_dir))
    run_dir = base / "run"
    finished: list[str] = []

    def stop(unit: Unit, result: UnitResult) -> None:
        finished.append(unit.unit_id)
        if len(finished) == 4:
            raise StopStudy

    with pytest.raises(StopStudy):
        run_study(config, run_dir, on_unit_done=stop)
    audits = list((cache_dir / "audits").iterdir())
    audit_written = (audits[0] / "audit.json").stat().st_mtime_ns
    resumed = run_study(config, run_dir)
    build_report(run_dir)  # what `synthaug study` does next
    changed_config = parse_config(noise_config(folders, cache_dir, drop_top=0.3))
    changed = run_study(changed_config, base / "run-drop-30")
    return {
        "folders": folders, "config": config, "run_dir": run_dir, "cache_dir": cache_dir, "audits": audits,
        "audit_written": audit_written, "resumed": resumed, "changed": changed, "changed_config": changed_config,
    }


@pytest.mark.slow
def test_the_audit_runs_once_and_the_resume_reuses_it(noise_study) -> None:
    audits = noise_study["audits"]
    assert len(audits) == 1, "one synthetic source, one audit, shared by the filtered and weighted regimes"
    assert json.loads((audits[0] / "audit.json").read_text())["status"] == "complete"
    assert (audits[0] / "audit.json").stat().st_mtime_ns == noise_study["audit_written"]
    assert list((noise_study["cache_dir"] / "audits").iterdir()) == audits  # the changed filter re-audits nothing
    resumed = noise_study["resumed"]
    assert resumed.units_total == 10 and resumed.units_resumed == 4


def test_rows_and_tables_name_each_treatment(noise_study) -> None:
    run_dir = noise_study["run_dir"]
    rows = {row["regime"]: row for row in read_rows(run_dir / "results.jsonl") if row["seed"] == 0}
    assert rows["synthetic"]["treatment"] is None and rows["synthetic"]["audit"] is None
    assert rows[FILTERED]["treatment"] == "filtered: top 20 % by audit score"
    assert rows[GCE]["treatment"] == "loss=generalized_cross_entropy" and rows[GCE]["audit"] is None
    assert rows[WEIGHTED_MIX]["treatment"] == "audit-weighted"
    assert rows[FILTERED]["audit"] == rows[WEIGHTED_MIX]["audit"]
    assert (run_dir / rows[FILTERED]["audit"] / "scores.jsonl").is_file()
    assert rows[FILTERED]["n_train"] == rows["synthetic"]["n_train"] == 9
    # The robust loss reached the trained model's hyper-parameters.
    config = json.loads((run_dir / rows[GCE]["model_dir"] / "config.json").read_text())
    assert config["hyperparameters"]["loss"] == "generalized_cross_entropy"

    with (run_dir / "summary.csv").open() as handle:
        summary = {line["regime"]: line for line in csv.DictReader(handle)}
    assert summary[FILTERED]["treatment"] == "filtered: top 20 % by audit score"
    assert summary["synthetic"]["treatment"] == ""
    markdown = (run_dir / "summary.md").read_text()
    assert f"| {FILTERED} | 3 synthetic (filtered: top 20 % by audit score) |" in markdown
    assert f"| {GCE} | 3 synthetic (loss=generalized_cross_entropy) |" in markdown
    html = (run_dir / "report.html").read_text()
    assert "3 hand-drawn (filtered: top 20 % by audit score)" in html
    assert "treatment vs plain" in html

    analysis = json.loads((run_dir / "analysis.json").read_text())
    pairs = {(c["treatment"], c["baseline"]) for c in analysis["comparisons"] if c["kind"] == "treatment vs plain"}
    assert pairs == {
        (f"{FILTERED}/n=3/cnn/deterministic", "synthetic/n=3/cnn/deterministic"),
        (f"{GCE}/n=3/cnn/deterministic", "synthetic/n=3/cnn/deterministic"),
    }
    assert analysis["headline"]["main"]["synthetic_regime"] == "synthetic"  # the plain regime leads


def test_a_worker_opens_what_the_driver_prepared_and_makes_nothing(noise_study, tmp_path) -> None:
    from synthaug.errors import DataError
    from synthaug.study.data import open_study_data

    config = noise_study["config"]
    prepared = prepare_study_data(config, StudyCache(noise_study["cache_dir"]))
    opened = open_study_data(config, StudyCache(noise_study["cache_dir"]))
    assert opened.audits == prepared.audits
    assert {name: pool.fingerprint() for name, pool in opened.regime_pools.items()} == {
        name: pool.fingerprint() for name, pool in prepared.regime_pools.items()}
    empty = tmp_path / "empty-cache"
    with pytest.raises(DataError, match="audit of synthetic source 'hand-drawn': not in the cache"):
        open_study_data(config, StudyCache(empty))
    assert not (empty / "audits").exists() or not any((empty / "audits").iterdir())


def test_filtered_and_weighted_training_sets(noise_study) -> None:
    config = noise_study["config"]
    data = prepare_study_data(config, StudyCache(noise_study["cache_dir"]))
    regimes = {regime.name: regime for regime in config.regimes}
    backbone, method = config.backbones[0], config.methods[0]
    synthetic = data.synthetic["hand-drawn"]
    dropped = drop_reasons(read_audit(data.audits["hand-drawn"], synthetic), drop_top=0.2)
    dropped_names = {synthetic.records[index]["file_name"] for index in dropped}
    assert len(dropped) == 6  # 20 % of 30
    for seed in config.seeds:
        filtered = training_set(config, data, Unit(regimes[FILTERED], 3, backbone, method, seed))
        assert len(filtered) == 9 and not dropped_names & {record["file_name"] for record in filtered.records}

    mixed = training_set(config, data, Unit(regimes[WEIGHTED_MIX], 3, backbone, method, 0))
    is_synthetic = np.array([record["file_name"] in {r["file_name"] for r in synthetic.records}
                             and "prompt" in record for record in mixed.records])
    assert is_synthetic.sum() == 24
    # The synthetic images keep their share of the loss, split among them by their audit weights.
    share = mixed.sample_weights[is_synthetic].sum() / mixed.sample_weights.sum()
    assert share == pytest.approx(0.5)
    assert len(np.unique(np.round(mixed.sample_weights[is_synthetic], 12))) > 1


def test_changing_a_treatment_retrains_only_its_units(noise_study) -> None:
    changed = noise_study["changed"]
    trained = {result.key.regime for result in changed.results if result.trained}
    assert trained == {FILTERED}
    results = {result.unit_id: result for result in changed.results}
    original = {result.unit_id: result for result in noise_study["resumed"].results}
    for unit_id, result in results.items():
        assert (result.model_key == original[unit_id].model_key) == (result.key.regime != FILTERED)
    assert results[f"{FILTERED}/n=3/cnn/deterministic/seed=0"].key.treatment == "filtered: top 30 % by audit score"


def test_bad_method_params_and_too_much_filtering_stop_before_training(noise_study, tmp_path) -> None:
    folders, cache_dir = noise_study["folders"], noise_study["cache_dir"]
    data = noise_config(folders, cache_dir)
    data["regimes"][3]["method_params"] = {"loss": "huber"}
    with pytest.raises(ConfigError, match=r"^regimes\[3\]\.method_params: invalid training setting loss='huber'"):
        run_study(parse_config(data), tmp_path / "bad-loss")
    data = noise_config(folders, cache_dir, drop_top=0.8)
    with pytest.raises(ConfigError, match=r"regimes\[2\]\.sizes: asks for 3 synthetic images per class .* after "
                                          r"filtered: top 80 % by audit score"):
        run_study(parse_config(data), tmp_path / "too-much")
    assert not (tmp_path / "too-much" / "results.jsonl").exists()


def test_a_run_folder_written_before_these_keys_existed_still_resumes(tmp_path) -> None:
    import yaml

    from synthaug.study.config import config_to_dict
    from synthaug.study.run_folder import RunFolder

    folders = {name: tmp_path / name for name in ("pool", "test", "synthetic", "ood")}
    config = parse_config(tiny_config_data(folders))
    old = config_to_dict(config)
    del old["audit"]
    for regime in old["regimes"]:
        for key in ("filter", "weights", "method_params"):
            del regime[key]
    (tmp_path / "run").mkdir()
    RunFolder(tmp_path / "run").config.write_text(yaml.safe_dump(old, sort_keys=False))
    RunFolder(tmp_path / "run").bind(config)  # the same study: no difference reported
    with pytest.raises(ConfigError, match=r"first difference at `regimes\[1\]\.method_params`"):
        changed = tiny_config_data(folders)
        changed["regimes"][1]["method_params"] = {"label_smoothing": 0.1}
        RunFolder(tmp_path / "run").bind(parse_config(changed))


@pytest.mark.slow
def test_a_study_of_synthetic_regimes_only_still_states_each_treatment(noise_study, tmp_path) -> None:
    # No real regime: no exchange rate to answer with, but the paired treatment comparisons stay.
    data = noise_config(noise_study["folders"], noise_study["cache_dir"])
    data["regimes"] = [regime for regime in data["regimes"] if regime["data"] == "synthetic"]
    result = run_study(parse_config(data), tmp_path / "run")
    assert result.units_total == 3 * len(data["seeds"])
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "(no real-vs-synthetic comparison in this study)" in summary
    assert f"- {FILTERED} vs synthetic at 3 per class (filtered: top 20 % by audit score): accuracy" in summary
    assert f"- {GCE} vs synthetic at 3 per class (loss=generalized_cross_entropy): accuracy" in summary
