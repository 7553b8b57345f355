"""A study with ``shift``: every unit evaluated on corrupted test sets, drawn in the report;
and the verdict on whether an epistemic score separates OOD data."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from synthaug.errors import ConfigError
from synthaug.study import parse_config
from synthaug.study.shift import EpistemicVerdict, ShiftedSet, epistemic_verdict, parse_shift_metric_key
from synthaug.study.stats import Interval

from helpers.tiny_study import tiny_config_data, write_tiny_folders


@pytest.fixture(scope="module")
def shifted_study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from synthaug.report import build_report
    from synthaug.study import run_study

    base = tmp_path_factory.mktemp("shift")
    folders = write_tiny_folders(base / "data")
    data = tiny_config_data(
        folders,
        regimes=[
            {"name": "real", "data": "real", "sizes": [8]},
            {"name": "synthetic", "data": "synthetic", "source": "hand-drawn", "sizes": [8]},
        ],
        methods=["deterministic", {"key": "mc-dropout", "params": {"num_samples": 4}}],
        seeds=[0],
        shift={"corruptions": ["contrast", "gaussian_noise"], "severities": [1, 5]},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNTHAUG_CACHE_DIR", str(base / "user-cache"))
        result = run_study(parse_config(data), base / "run")
        report = build_report(base / "run").read_text()
    return {"result": result, "report": report}


@pytest.mark.slow
def test_every_unit_has_metrics_on_every_shifted_set(shifted_study):
    for unit in shifted_study["result"].results:
        for corruption in ("contrast", "gaussian_noise"):
            for severity in (1, 5):
                for metric in ("accuracy", "nll", "ece", "brier"):
                    value = unit.metrics[ShiftedSet(corruption, severity).metric_key(metric)]
                    assert math.isfinite(value)


def test_severe_noise_costs_accuracy(shifted_study):
    for unit in shifted_study["result"].results:
        assert unit.metrics["shift:gaussian_noise:5:accuracy"] <= unit.metrics["accuracy"]


def test_the_report_draws_the_shift_section_and_judges_the_epistemic_score(shifted_study):
    report = shifted_study["report"]
    assert "Under dataset shift" in report
    assert "accuracy, ECE and NLL against corruption severity" in report
    assert "does MI separate noise?" in report


def test_the_analysis_holds_the_severity_curves_and_verdicts_and_reads_them_back(shifted_study, tmp_path):
    import json

    from synthaug.study.analysis import read_analysis

    result = shifted_study["result"]
    analysis = result.analysis
    for group in analysis.groups:
        curves = analysis.shift_curves[group.group_id]
        assert sorted(curves) == ["accuracy", "ece", "nll"] and sorted(curves["accuracy"]) == [0, 1, 5]
        assert curves["accuracy"][0] == pytest.approx(group.metrics["accuracy"].mean)
        noise, contrast = (group.metrics[f"shift:{name}:5:accuracy"].mean for name in ("gaussian_noise", "contrast"))
        assert curves["accuracy"][5] == pytest.approx((noise + contrast) / 2)
        # Only the sampling method has a verdict on its mutual information.
        assert (group.group_id in analysis.epistemic) == group.has_weight_samples
    saved_analysis = read_analysis(result.run_dir)
    assert (saved_analysis.shift_curves, saved_analysis.epistemic) == (analysis.shift_curves, analysis.epistemic)
    # A file written before these records existed gets them from its groups.
    saved = json.loads((result.run_dir / "analysis.json").read_text())
    for key in ("shift_curves", "epistemic", "targeted_curves", "targeted_comparisons"):
        del saved[key]
    old = tmp_path / "old"
    old.mkdir()
    (old / "analysis.json").write_text(json.dumps(saved))
    legacy = read_analysis(old)
    assert legacy.shift_curves == analysis.shift_curves and legacy.epistemic == analysis.epistemic


def test_a_verdict_round_trips():
    verdict = epistemic_verdict(_interval(0.9), 100, 100)
    assert EpistemicVerdict.from_dict(verdict.to_dict()) == verdict


def test_metric_keys_round_trip():
    shifted = ShiftedSet("blur", 3)
    assert parse_shift_metric_key(shifted.metric_key("ece")) == (shifted, "ece")
    assert parse_shift_metric_key("noise:ood_auroc_entropy") is None
    assert parse_shift_metric_key("accuracy") is None


@pytest.mark.parametrize(
    "shift, words",
    [
        ({"corruptions": ["fog"]}, "shift.corruptions[0]"),
        ({"severities": [0]}, "shift.severities[0]"),
        ({"severities": [1, 1]}, "list each entry once"),
        ({"corruption": ["blur"]}, "unknown key"),
    ],
)
def test_a_bad_shift_config_is_one_line_naming_the_key(tmp_path: Path, shift, words):
    data = tiny_config_data(write_tiny_folders(tmp_path / "data"), shift=shift)
    with pytest.raises(ConfigError) as raised:
        parse_config(data)
    assert words in str(raised.value) and "\n" not in str(raised.value)


def _interval(mean: float, low: float = math.nan, high: float = math.nan) -> Interval:
    return Interval(mean=mean, low=low, high=high, std=math.nan, n=1)


def test_the_verdict_flags_chance_and_inversion_and_accepts_separation():
    # Hanley & McNeil: AUROC 0.9 on 100 + 100 examples has a standard error of
    # sqrt((0.09 + 99 (0.9/1.1 - 0.81) + 99 (1.62/1.9 - 0.81)) / 10^4) = 0.0226.
    separates = epistemic_verdict(_interval(0.9), 100, 100)
    assert separates.status == "separates" and separates.is_finding
    assert separates.high - separates.low == pytest.approx(2 * 1.96 * 0.0226, abs=1e-3)
    assert epistemic_verdict(_interval(0.53), 100, 100).status == "chance"
    assert epistemic_verdict(_interval(0.35), 1000, 1000).status == "inverted"
    assert epistemic_verdict(_interval(0.62), 2000, 2000).status == "weak"
    # Seeds that disagree widen the interval to chance even on large sets.
    assert epistemic_verdict(_interval(0.8, 0.45, 1.0), 5000, 5000).status == "chance"
    assert epistemic_verdict(None, 10, 10) is None
    assert "not a finding" in epistemic_verdict(_interval(0.5), 100, 100).text()
