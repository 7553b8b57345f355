"""The study's records: files are their serialisation, and old run folders still load."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from synthaug.fileio import from_json_value, to_json_value
from synthaug.study.analysis import read_analysis
from synthaug.study.records import GroupKey, StudyAnalysis, UnitResult, make_group_id
from synthaug.study.results import append_result, read_results

# A results row as synthaug wrote it before treatments and audited regimes existed.
OLD_ROW: dict[str, Any] = {
    "backbone": "cnn",
    "data": "mixed",
    "method": "deterministic",
    "method_key": "deterministic",
    "metrics": {"accuracy": 0.75, "ece": 0.1, "noise:ood_auroc_entropy": "nan"},
    "model_dir": "cache/models/abc",
    "model_key": "abc",
    "n_train": 39,
    "predict_seconds": 0.5,
    "predictions": {"noise": "cache/predictions/p2.npz", "test": "cache/predictions/p1.npz"},
    "real_per_class": 3,
    "regime": "real+synthetic",
    "seed": 1,
    "size": 3,
    "source": "hand-drawn",
    "synthetic_per_class": 10,
    "train_seconds": 2.0,
    "trained": True,
    "unit_id": "real+synthetic/n=3/cnn/deterministic/seed=1",
    "unit_seconds": 3.0,
}


def test_a_row_written_before_treatments_existed_still_loads(tmp_path: Path) -> None:
    log = tmp_path / "results.jsonl"
    log.write_text(json.dumps(OLD_ROW, sort_keys=True) + "\n")
    (result,) = read_results(log)
    assert result.key == GroupKey("real+synthetic", "mixed", "hand-drawn", None, 3, 3, 10, "cnn", "deterministic",
                                  "deterministic")
    assert result.audit is None and result.trained and result.seed == 1
    assert result.group_id == "real+synthetic/n=3/cnn/deterministic"
    assert result.unit_id == f"{result.group_id}/seed=1"
    assert math.isnan(result.metrics["noise:ood_auroc_entropy"]) and result.metrics["accuracy"] == 0.75
    # Written back, the row keeps every old key and value and gains the new keys (the
    # augmentation: "none", as every unit trained before regimes took `augment`).
    rewritten = result.to_dict()
    assert set(rewritten) == set(OLD_ROW) | {"treatment", "audit", "augment"}
    assert rewritten["augment"] == "none"
    new_keys = ("treatment", "audit", "augment", "metrics")
    assert {key: value for key, value in rewritten.items() if key not in new_keys} == {
        key: value for key, value in OLD_ROW.items() if key != "metrics"
    }


def test_a_unit_result_round_trips_through_the_log(tmp_path: Path) -> None:
    row = {**from_json_value(OLD_ROW), "treatment": "audit-weighted", "audit": "cache/audits/k",
           "augment": "flip-crop", "under_trained": True}  # fmt: skip
    result = UnitResult.from_dict(row)
    assert result.key.augment == "flip-crop" and result.under_trained is True
    log = tmp_path / "results.jsonl"
    append_result(log, result)
    append_result(log, result)
    first, second = read_results(log)
    assert first.to_dict().keys() == row.keys()
    assert first.key == second.key == result.key and first.key.treatment == "audit-weighted"
    assert first.audit == "cache/audits/k" and first.metrics.keys() == result.metrics.keys()


def test_the_group_id_is_built_in_one_place() -> None:
    key = GroupKey.from_dict(OLD_ROW)
    assert key.group_id == make_group_id("real+synthetic", 3, "cnn", "deterministic") == (
        "real+synthetic/n=3/cnn/deterministic"
    )


def test_analysis_json_is_the_serialisation_of_the_analysis(tiny_study: dict[str, Any]) -> None:
    run_dir = Path(tiny_study["run_dir"])
    saved = from_json_value(json.loads((run_dir / "analysis.json").read_text()))
    analysis = read_analysis(run_dir)
    assert isinstance(analysis, StudyAnalysis)
    # Read back and written again, the analysis is the same JSON, key for key.
    assert json.dumps(to_json_value(analysis.to_dict()), sort_keys=True) == json.dumps(
        to_json_value(saved), sort_keys=True
    )
    main = analysis.headline.main
    assert main is not None and analysis.group(main.group_id(main.real_regime)) is not None
    assert {group.group_id for group in analysis.groups} == {group["group_id"] for group in saved["groups"]}


def test_the_generic_codec_reads_old_rows_and_ignores_unknown_keys() -> None:
    from synthaug.study.records import GroupKey, Headline, MetricDifference
    from synthaug.study.stats import Interval

    row = {"regime": "real", "data": "real", "size": 8, "real_per_class": 8, "synthetic_per_class": 0,
           "backbone": "cnn", "method": "deterministic", "method_key": "deterministic", "added_later": 1}
    key = GroupKey.from_dict(row)  # no `source` or `treatment`: rows from before they existed
    assert key.source is None and key.treatment is None and key.size == 8
    assert GroupKey.from_dict(key.to_dict()) == key
    difference = MetricDifference(Interval(mean=0.1, low=0.0, high=0.2, std=0.05, n=3))
    assert difference.to_dict() == {"seeds": difference.seeds.to_dict()}  # no bootstrap: no key
    assert MetricDifference.from_dict(difference.to_dict()) == difference
    headline = Headline(question="q", answer="", facts=[], main=None)
    assert headline.to_dict()["main"] == {} and Headline.from_dict(headline.to_dict()) == headline
    with pytest.raises(KeyError, match="method_key"):
        GroupKey.from_dict({name: value for name, value in row.items() if name != "method_key"})
