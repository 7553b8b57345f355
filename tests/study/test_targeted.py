"""Uncertainty-targeted generation: the allocation rule, the class scores, the config keys,
and a tiny targeted study through the generation engine."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from synthaug.errors import ConfigError
from synthaug.study import parse_config, run_study
from synthaug.study.targeted import allocate, class_scores, read_targeted_run, round_shares, targeted_analysis

from helpers.tiny_study import CLASSES, tiny_config_data, write_tiny_folders
from helpers.tiny_targeted import targeted_config_data, tiny_targeted_study


def test_allocate_splits_exactly_with_a_floor() -> None:
    # 100 images, floor 0.2: 20 evenly (5 each), 80 in proportion to 1:1:2:4 (10, 10, 20, 40).
    np.testing.assert_array_equal(allocate(np.array([1.0, 1.0, 2.0, 4.0]), 100, 0.2), [15, 15, 25, 45])
    # Largest remainder keeps the sum; ties go to the earlier class.
    counts = allocate(np.array([1.0, 1.0, 1.0]), 10, 0.0)
    assert counts.sum() == 10 and counts.tolist() == [4, 3, 3]
    # A certain model (all zeros) and the uniform rule split evenly; floor 1 ignores the scores.
    assert allocate(np.zeros(4), 8, 0.2).tolist() == [2, 2, 2, 2]
    assert allocate(np.array([0.0, 9.0]), 10, 1.0).tolist() == [5, 5]
    assert round_shares(10, 4) == [3, 3, 2, 2] and sum(round_shares(400, 4)) == 400


def test_class_scores_by_hand() -> None:
    # Two members: on class 0 they disagree completely (MI = ln 2), on class 1 they agree.
    samples = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]])  # (S=2, N=2, C=2)
    uncertainty, error = class_scores(samples, np.array([0, 1]), 2)
    assert uncertainty[0] == pytest.approx(math.log(2)) and uncertainty[1] == pytest.approx(0.0)
    # Class 0's image: mean (0.5, 0.5), argmax 0 = right; class 1's: right.
    assert error.tolist() == [0.0, 0.0]
    # Both images labelled 1: the first (tie, argmax 0) is wrong, the second right.
    uncertainty, error = class_scores(samples, np.array([1, 1]), 2)
    assert error[1] == 0.5 and np.isnan(error[0]) and uncertainty[1] == pytest.approx(math.log(2) / 2)


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    folders = write_tiny_folders(tmp_path / "data")
    good = targeted_config_data(folders, tmp_path / "generator")
    assert parse_config(good).regime_methods(parse_config(good).regimes[0])[0].name == "ensemble"
    cases = {
        "regimes[0].targeted.method: unknown method 'bnn'": {"method": "bnn"},
        "regimes[0].mix: a targeted regime does not take it": {"synthetic_per_class": 3},
        "regimes[0].targeted.budget: 12 images cannot be spent in 20 rounds": {"rounds": 20},
    }
    for message, change in cases.items():
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_config(targeted_config_data(folders, tmp_path / "generator", **change))
    plain = tiny_config_data(folders)
    plain["regimes"][0]["rounds"] = 3
    with pytest.raises(ConfigError, match=r"regimes\[0\]\.targeted\.budget: missing required key"):
        parse_config(plain)


@pytest.mark.slow
def test_a_tiny_targeted_study_spends_its_budget_by_rounds(tmp_path_factory: pytest.TempPathFactory) -> None:
    from synthaug.data import load_dataset

    config, result = tiny_targeted_study(tmp_path_factory.getbasetemp())
    run_dir = result.run_dir
    assert len(result.results) == 4  # 2 regimes x 1 size x 1 method (ensemble only) x 2 seeds
    for row in result.results:
        assert row.key.method == "ensemble" and row.n_train == 3 * 3 + 12
        assert (row.key.real_per_class, row.key.synthetic_per_class) == (3, 4)  # 12 images over 3 classes
        run = read_targeted_run(run_dir / row.targeted)
        assert [item.round for item in run.rounds] == [0, 1]
        assert [sum(item.allocation.values()) for item in run.rounds] == [6, 6]
        assert [item.synthetic_images for item in run.rounds] == [0, 6]
        assert sum(run.final_per_class.values()) == 12 and set(run.final_per_class) == set(CLASSES)
        assert all(0.0 <= value <= math.log(2) + 1e-9 for value in run.rounds[0].uncertainty.values())
        if run.allocate == "uniform":
            assert all(item.allocation == dict.fromkeys(CLASSES, 2) for item in run.rounds)
    # One generation folder for every rule and seed, holding each class's largest count.
    targeted_folders = [path for path in (run_dir / "cache" / "generated").iterdir()
                        if (path / "generation.json").is_file() and
                        json.loads((path / "generation.json").read_text())["runs"][-1]["per_class"] != 1]
    assert len(targeted_folders) == 1
    counts = load_dataset(str(targeted_folders[0])).class_counts()
    largest = {name: max(read_targeted_run(run_dir / row.targeted).final_per_class[name]
                         for row in result.results) for name in CLASSES}
    assert counts == largest
    curves, comparisons = targeted_analysis(config, result.results, run_dir)
    assert {(curve.regime, tuple(curve.images)) for curve in curves} == {("targeted", (0, 6, 12)),
                                                                         ("uniform", (0, 6, 12))}
    (comparison,) = comparisons
    assert comparison.regime == "targeted" and comparison.baseline == "uniform" and comparison.final_difference.n == 2
    # The study inspected its source.
    assert (run_dir / "inspect" / "tiny-ddpm" / "summary.json").is_file()
    # A rerun resumes: nothing is trained or generated again.
    again = run_study(config, run_dir)
    assert again.units_resumed == 4


def test_a_synthetic_targeted_regime_starts_from_generated_images(tmp_path_factory: pytest.TempPathFactory) -> None:
    from helpers.tiny_targeted import tiny_generator

    base = tmp_path_factory.getbasetemp()
    folders = write_tiny_folders(base / "tiny-data")
    data = targeted_config_data(folders, tiny_generator(base / "tiny-generator", folders["pool"]))
    data.update(regimes=[{"name": "synthetic-error", "data": "synthetic", "sizes": [2], "budget": 6, "rounds": 2,
                          "allocate": "error", "method": "ensemble"}], seeds=[0], inspect="off")
    result = run_study(parse_config(data), base / "tiny-targeted-synthetic")
    (row,) = result.results
    run = read_targeted_run(result.run_dir / row.targeted)
    assert row.n_train == 2 * 3 + 6 and row.key.synthetic_per_class == 4 and row.key.real_per_class == 0
    assert run.rounds[0].synthetic_per_class == dict.fromkeys(CLASSES, 2) and run.rounds[0].synthetic_images == 0
    assert not (result.run_dir / "inspect").exists()
