"""Study sources guided by (or tuned on) each regime's own real images, and the leakage guard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synthaug.errors import ConfigError
from synthaug.study import parse_config, run_study
from synthaug.study.cache import StudyCache
from synthaug.study.data import prepare_study_data, training_set
from synthaug.study.units import plan_units


def config_data(generate: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "guided",
        "real": {"train": "fashion-mnist:train[50000:50400]", "test": "fashion-mnist:test[:200]", "val_fraction": 0.25},
        "synthetic": [{"name": "guided", "generate": {"backend": "ddpm", "per_class": 4, "seed": 0, **generate}}],
        "regimes": [
            {"name": "real", "data": "real", "sizes": [2]},
            {"name": "real+guided", "data": "mixed", "sizes": [2], "synthetic_per_class": 4},
            {"name": "guided", "data": "synthetic", "sizes": [3]},
        ],
        "backbones": [{"name": "cnn", "params": {"channels": [4], "hidden": 8}}],
        "methods": ["deterministic"],
        "method_params": {"epochs": 1, "batch_size": 16, "min_steps": 1},
        "seeds": [0, 1],
        "bootstrap_resamples": 100,
    }
    data.update(overrides)
    return data


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_each_regime_is_guided_by_its_own_real_images(tmp_path):
    config = parse_config(config_data({"init_images": "real", "strength": [0.5, 0.75], "real_per_class": 2},
                                      cache_dir=str(tmp_path / "cache")))  # fmt: skip
    data = prepare_study_data(config, StudyCache(tmp_path / "cache"))
    assert sorted(data.per_real) == [("guided", 2, 0), ("guided", 2, 1)]
    for unit in plan_units(config):
        if unit.regime.data != "mixed":
            continue
        train = training_set(config, data, unit)
        real_part = train.subset(np.arange(2 * len(data.classes)))
        real_names = {f"{r['source']}[{r['index']}]" for r in real_part.records}
        guided_rows = [r for r in train.records if "init_image" in r]
        assert len(guided_rows) == 4 * len(data.classes)
        # Every guided image is a variant of one of this unit's own real images, at a listed strength.
        assert {r["init_image"]["file_name"] for r in guided_rows} <= real_names
        assert {r["init_image"]["strength"] for r in guided_rows} <= {0.5, 0.75}
    first, second = (data.per_real[("guided", 2, seed)] for seed in (0, 1))
    assert first.fingerprint() != second.fingerprint()  # the cache key holds the real images


@pytest.mark.slow
def test_a_study_with_guided_and_tuned_sources_runs(tmp_path):
    data = config_data({"init_images": "real", "strength": 0.5, "real_per_class": 2}, cache_dir=str(tmp_path / "c"))
    data["synthetic"].append({"name": "tuned", "generate": {"backend": "ddpm", "per_class": 4, "tune_on": "real",
                                                           "tune_steps": 2, "real_per_class": 2}})  # fmt: skip
    data["synthetic"].append({"name": "text", "generate": {"backend": "ddpm", "per_class": 4}})
    data["regimes"] = [*data["regimes"][:2], {**data["regimes"][1], "name": "real+tuned", "source": "tuned"},
                       {**data["regimes"][1], "name": "real+text", "source": "text"}]  # fmt: skip
    data["regimes"][1]["source"] = "guided"
    data["seeds"] = [0, 1]
    result = run_study(parse_config(data), tmp_path / "run")
    assert {row.key.regime for row in result.results} == {"real", "real+guided", "real+tuned", "real+text"}
    checks = list((tmp_path / "c").rglob("tuning_check.json"))
    assert len(checks) == 2 and json.loads(checks[0].read_text())["steps"] == 2
    # Guided and tuned against text-only, at equal synthetic counts, paired by seed.
    versus_text = {(c.treatment.split("/")[0], c.baseline.split("/")[0]) for c in result.analysis.comparisons
                   if c.kind == "real-image source vs text-only"}  # fmt: skip
    assert versus_text == {("real+guided", "real+text"), ("real+tuned", "real+text")}
    from synthaug.report import build_report

    html = build_report(result.run_dir).read_text()
    assert "Guided images beside their real source" in html and "s = 0.5" in html
    assert html.count('alt="real ') == 10


@pytest.mark.slow
def test_guidance_from_test_images_is_refused_in_one_line(tmp_path):
    # The training pool overlaps the test set: guiding from it would leak test images.
    data = config_data({"init_images": "real", "strength": 0.5, "real_per_class": 2},
                       real={"train": "fashion-mnist:test[:400]", "test": "fashion-mnist:test[:400]",
                             "val_fraction": 0.25}, cache_dir=str(tmp_path / "cache"))  # fmt: skip
    with pytest.raises(ConfigError, match=r"synthetic\[0\] \(guided\).*also in the test set") as error:
        prepare_study_data(parse_config(data), StudyCache(tmp_path / "cache"))
    assert "\n" not in str(error.value)
    spec = config_data({"init_images": "fashion-mnist:test[:50]", "strength": 0.5}, cache_dir=str(tmp_path / "c2"))
    spec["regimes"] = spec["regimes"][:2]
    with pytest.raises(ConfigError, match=r"synthetic\[0\]\.generate\.init_images: .*also in the test set"):
        prepare_study_data(parse_config(spec), StudyCache(tmp_path / "c2"))


def test_config_checks_the_guidance_keys():
    with pytest.raises(ConfigError, match="real_per_class: missing"):
        parse_config(config_data({"init_images": "real", "strength": 0.5}))
    with pytest.raises(ConfigError, match="either init_images or tune_on"):
        parse_config(config_data({"init_images": "real", "tune_on": "real", "real_per_class": 2}))
    with pytest.raises(ConfigError, match="strength: needs init_images"):
        parse_config(config_data({"strength": 0.5}))


@pytest.mark.slow
def test_a_per_regime_guided_source_that_no_regime_uses_is_refused_in_one_line(tmp_path):
    data = config_data({"init_images": "real", "strength": 0.5, "real_per_class": 2}, cache_dir=str(tmp_path / "c"))
    data["synthetic"].append({"name": "text", "generate": {"backend": "ddpm", "per_class": 4}})
    data["regimes"] = [data["regimes"][0], {"name": "text", "data": "synthetic", "source": "text", "sizes": [3]}]
    with pytest.raises(ConfigError, match=r"synthetic\[0\]\.generate\.init_images: .*no real or mixed regime uses "
                                          r"source 'guided'") as error:  # fmt: skip
        prepare_study_data(parse_config(data), StudyCache(tmp_path / "c"))
    assert "\n" not in str(error.value)
