"""Classical augmentation in a study (issue 18): regimes' ``augment``, the under-trained flag,
and generated images paired against and on top of the best classical policy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synthaug.errors import ConfigError
from synthaug.study import parse_config
from synthaug.study.config_regimes import augment_label
from synthaug.study.runner import unit_group
from synthaug.study.units import make_unit_method, plan_units, unit_method_params

from helpers.tiny_study import tiny_config_data, write_tiny_folders

POLICIES = ("flip-crop", "trivialaugment")


def _augmented_regimes() -> list[dict[str, Any]]:
    """real; real + each policy; real + synthetic; real + synthetic + each policy."""
    mixed = {"data": "mixed", "sizes": [3], "synthetic_per_class": 10}
    return [
        {"name": "real", "data": "real", "sizes": [3]},
        *[{"name": f"real+{p}", "data": "real", "sizes": [3], "augment": p} for p in POLICIES],
        {"name": "real+synthetic", **mixed},
        *[{"name": f"real+synthetic+{p}", **mixed, "augment": p} for p in POLICIES],
    ]


def _config_data(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    data = tiny_config_data(write_tiny_folders(tmp_path / "data"), regimes=_augmented_regimes(),
                            methods=["deterministic"])  # fmt: skip
    return {**data, **overrides}


def test_augment_label_names_the_policy_and_its_options() -> None:
    assert augment_label(None) == "none"
    assert augment_label("none") == "none"
    assert augment_label(["flip-crop", {"name": "mixup", "alpha": 0.4}]) == "flip-crop+mixup(alpha=0.4)"


def test_regime_augment_reaches_the_method_and_the_group_key(tmp_path: Path) -> None:
    config = parse_config(_config_data(tmp_path))
    by_regime = {unit.regime.name: unit for unit in plan_units(config)}
    assert "augment" not in unit_method_params(config, by_regime["real"])
    assert make_unit_method(config, by_regime["real+trivialaugment"]).augment == "trivialaugment"
    assert unit_group(config, by_regime["real+synthetic+flip-crop"]).augment == "flip-crop"
    assert unit_group(config, by_regime["real"]).augment == "none"


def test_regime_augment_overrides_the_study_default(tmp_path: Path) -> None:
    regimes = [
        {"name": "real", "data": "real", "sizes": [3]},
        {"name": "plain", "data": "real", "sizes": [4], "augment": "none"},
        {"name": "trivial", "data": "real", "sizes": [5], "augment": "trivialaugment"},
    ]
    config = parse_config(_config_data(tmp_path, regimes=regimes, augment="flip-crop"))
    labels = {unit.regime.name: unit_group(config, unit).augment for unit in plan_units(config)}
    assert labels == {"real": "flip-crop", "plain": "none", "trivial": "trivialaugment"}
    assert config.plain_regime("real").name == "plain"  # the un-augmented baseline


def test_unknown_policy_is_one_line_naming_the_regime(tmp_path: Path) -> None:
    data = _config_data(tmp_path)
    data["regimes"][1]["augment"] = "sharpen"
    with pytest.raises(ConfigError, match=r"regimes\[1\]\.augment .*unknown policy 'sharpen'") as error:
        parse_config(data)
    assert "\n" not in str(error.value)


def test_frozen_backbone_without_views_is_refused_at_validation(tmp_path: Path) -> None:
    frozen = [{"name": "resnet18", "params": {"freeze": True}}]
    data = _config_data(tmp_path, backbones=frozen)
    with pytest.raises(ConfigError, match=r"regimes\[1\]\.augment .*'resnet18'.*needs augment_views") as error:
        parse_config(data)
    # Every augmenting regime is named, one line each.
    head, *lines = str(error.value).splitlines()
    augmenting = [index for index, regime in enumerate(data["regimes"]) if regime.get("augment")]
    assert head == f"{len(augmenting)} problems:"
    assert [line.split()[0] for line in lines] == [f"regimes[{index}].augment" for index in augmenting]
    # With cached views it is a valid study.
    parse_config({**data, "method_params": {**data["method_params"], "augment_views": 2},
                  "regimes": [r for r in data["regimes"] if r.get("augment") != "trivialaugment"]})  # fmt: skip


def test_two_real_baselines_with_the_same_policy_are_refused(tmp_path: Path) -> None:
    regimes = [
        {"name": "a", "data": "real", "sizes": [3], "augment": "flip-crop"},
        {"name": "b", "data": "real", "sizes": [4], "augment": "flip-crop"},
    ]
    with pytest.raises(ConfigError, match="per `augment` policy"):
        parse_config(_config_data(tmp_path, regimes=regimes))


@pytest.fixture(scope="module")
def augmented_study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny study with every combination of real, generated and classical augmentation (and
    generated images alone), trained for one epoch (so every unit is under-trained), analysed and reported."""
    from synthaug.report import build_report
    from synthaug.study import run_study

    base = tmp_path_factory.mktemp("augmented")
    data = _config_data(base, method_params={"epochs": 1, "batch_size": 8, "learning_rate": 0.01})
    # A synthetic-only regime gives the headline its main setting (real vs synthetic).
    data["regimes"].append({"name": "synthetic", "data": "synthetic", "sizes": [3]})
    result = run_study(parse_config(data), base / "run")
    return {"result": result, "run_dir": base / "run", "report": build_report(base / "run")}


@pytest.mark.slow
def test_analysis_pairs_generated_with_no_and_best_classical(augmented_study: dict[str, Any]) -> None:
    analysis = augmented_study["result"].analysis
    by_regime = {group.key.regime: group for group in analysis.groups}
    (record,) = analysis.augmentation
    accuracy = {name: group.metrics["accuracy"].mean for name, group in by_regime.items()}
    best = max(POLICIES, key=lambda policy: accuracy[f"real+{policy}"])
    assert record.best_policy == best
    assert record.real_per_class == 3 and record.synthetic_per_class == 10
    assert record.policies == {"none": accuracy["real"], **{p: accuracy[f"real+{p}"] for p in POLICIES}}

    def seed_difference(treatment: str, baseline: str) -> float:
        rows = {(r.key.regime, r.seed): r.metrics["accuracy"] for r in augmented_study["result"].results}
        return float(np.mean([rows[(treatment, seed)] - rows[(baseline, seed)] for seed in (0, 1)]))

    pairs = {
        "over_none": ("real+synthetic", "real"),
        "over_best": ("real+synthetic", f"real+{best}"),
        "on_top_of_best": (f"real+synthetic+{best}", f"real+{best}"),
    }
    for field, (treatment, baseline) in pairs.items():
        comparison = getattr(record, field)
        assert comparison.treatment == by_regime[treatment].group_id
        assert comparison.baseline == by_regime[baseline].group_id
        assert comparison.differences["accuracy"].seeds.mean == pytest.approx(seed_difference(treatment, baseline))
        assert "ece" in comparison.differences
    facts = analysis.headline.facts
    assert any(fact.startswith("At 3 real images per class, 10 hand-drawn images") for fact in facts)
    # The "adding generated images" lines the X and Z above already state are left out; the
    # other policy's keeps its line.
    adding = [fact for fact in facts if fact.startswith("Adding 10 hand-drawn images per class to 3 real ones")]
    (other,) = [policy for policy in POLICIES if policy != best]
    assert [fact.split(":")[0] for fact in adding] == [
        f"Adding 10 hand-drawn images per class to 3 real ones, both with {other}"
    ]


@pytest.mark.slow
def test_under_trained_units_are_flagged_in_results_and_report(augmented_study: dict[str, Any]) -> None:
    rows = [json.loads(line) for line in (augmented_study["run_dir"] / "results.jsonl").read_text().splitlines()]
    # One epoch: its best validation loss is always its last, so every unit is flagged.
    assert rows and all(row["under_trained"] is True for row in rows)
    assert {row["augment"] for row in rows} == {"none", *POLICIES}
    groups = augmented_study["result"].analysis.groups
    assert all(group.under_trained == len(group.seeds) for group in groups)
    html = augmented_study["report"].read_text(encoding="utf-8")
    assert f"<strong>{len(rows)} unit(s) in this study</strong>" in html
    assert "<strong>2 of 2</strong>" in html


@pytest.mark.slow
def test_report_draws_generated_vs_classical_with_the_literature(augmented_study: dict[str, Any]) -> None:
    html = augmented_study["report"].read_text(encoding="utf-8")
    assert "Generated vs classical augmentation" in html
    assert "real + generated + best policy vs real + best policy" in html
    assert "SaSPA (Michaeli &amp; Fried, NeurIPS 2024)" in html
    assert "DA-Fusion" in html and "DiffDA-Eval" in html
    assert ">trivialaugment<" in html and ">flip-crop<" in html and ">none<" in html
