"""The study config: validation errors name the key path, one line per problem."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from synthaug.errors import ConfigError
from synthaug.study import load_config, parse_config
from synthaug.study.demo import demo_config

BASE = {
    "real": {"train": "fashion-mnist:train[50000:]", "test": "fashion-mnist:test"},
    "synthetic": [{"name": "ddpm", "generate": {"backend": "ddpm", "per_class": 100}}],
    "regimes": [
        {"name": "real", "data": "real", "sizes": [10, 50]},
        {"name": "synthetic", "data": "synthetic", "sizes": [10, 100]},
    ],
}


def config_with(change) -> dict:
    data = copy.deepcopy(BASE)
    change(data)
    return data


def error_of(data) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_and_shortcuts() -> None:
    config = parse_config(
        config_with(lambda d: d.update(methods=["deterministic", {"key": "bnn", "sizes": [50]}], ood=["digits"]))
    )
    assert config.seeds == [0, 1, 2]
    assert [b.name for b in config.backbones] == ["cnn"]
    assert [(m.key, m.name, m.sizes) for m in config.methods] == [
        ("deterministic", "deterministic", None),
        ("bnn", "bnn", [50]),
    ]
    assert config.ood[0].name == config.ood[0].data == "digits"
    real = config.regimes[0]
    assert [m.name for m in config.regime_methods(real, 10)] == ["deterministic"]
    assert [m.name for m in config.regime_methods(real, 50)] == ["deterministic", "bnn"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["regimes"][1].update(sizez=[1]),
            "regimes[1].sizez: unknown key; valid keys here: name, data, sizes",
        ),
        (lambda d: d.update(colour="blue"), "colour: unknown key"),
        (
            lambda d: d["regimes"][1].update(sizes=[10, -5]),
            "regimes[1].sizes: must be a list of distinct positive integers",
        ),
        (lambda d: d["regimes"][0].update(sizes="many"), "regimes[0].sizes: input should be a valid list (got 'many')"),
        (lambda d: d.update(seeds=[0, "one"]), "seeds[1]: input should be a valid integer"),
        (lambda d: d["real"].pop("test"), "real.test: missing required key"),
        (lambda d: d.pop("real"), "real: missing required key"),
        (
            lambda d: d["regimes"][1].update(data="imaginary"),
            "regimes[1].data: input should be 'real', 'synthetic' or 'mixed'",
        ),
        (
            lambda d: d["regimes"][1].update(source="dalle"),
            "regimes[1].source: unknown source 'dalle'; choose one of: ddpm",
        ),
        (
            lambda d: d["regimes"][1].update(sizes=[10, 500]),
            "regimes[1].sizes: asks for 500 synthetic images per class",
        ),
        (
            lambda d: d["regimes"].append({"name": "mix", "data": "mixed", "sizes": [10]}),
            "regimes[2].mix.synthetic_per_class: missing; a mixed regime needs it",
        ),
        (lambda d: d["regimes"][0].update(name="synthetic"), "regimes: regime names must be distinct"),
        (lambda d: d["regimes"][0].update(methods=["bnn"]), "regimes[0].methods[0]: unknown method 'bnn'"),
        (
            lambda d: d["synthetic"][0].update(path="/somewhere"),
            "synthetic[0]: give exactly one of `path`, `generate` or `retrieve`",
        ),
        (lambda d: d.update(ood=[{"name": "held"}]), "ood[0]: give exactly one of `data` or `holdout_classes`"),
        (lambda d: d.update(methods=[{"key": "bnn", "sizes": []}]), "methods[0].sizes: must be a non-empty list"),
        # Noise-robust regimes: filter, audit weights, method settings, and the audit section.
        (
            lambda d: d["regimes"][1].update(filter={"dorp_top": 0.1}),
            "regimes[1].filter.dorp_top: unknown key; valid keys here: drop_top, threshold, drop_label_issues",
        ),
        (
            lambda d: d["regimes"][1].update(filter={"drop_top": 1.5}),
            "regimes[1].filter.drop_top: must be a fraction in (0, 1) such as 0.1, or a count >= 1",
        ),
        (
            lambda d: d["regimes"][1].update(filter={"drop_top": 0.1, "threshold": 0.9}),
            "regimes[1].filter: give drop_top or threshold, not both",
        ),
        (lambda d: d["regimes"][1].update(filter={}), "regimes[1].filter: say what to drop"),
        (
            lambda d: d["regimes"][1].update(filter={"threshold": 0.9, "per_class": True}),
            "regimes[1].filter: per_class applies to drop_top; give drop_top",
        ),
        (lambda d: d["regimes"][1].update(weights="uniform"), "regimes[1].weights: input should be 'audit'"),
        (
            lambda d: d["regimes"][0].update(filter={"drop_top": 0.1}),
            "regimes[0].filter: only a synthetic or mixed regime takes it",
        ),
        (lambda d: d["regimes"][0].update(weights="audit"), "regimes[0].weights: only a synthetic or mixed regime"),
        (
            lambda d: d["regimes"][1].update(method_params="gce"),
            "regimes[1].method_params: input should be a valid dictionary",
        ),
        (
            lambda d: d["regimes"].append({"name": "real again", "data": "real", "sizes": [10]}),
            "regimes: at most one regime may have `data: real` without `method_params`",
        ),
        (
            lambda d: d["regimes"][1].update(synthetic_probability=0.5),
            "regimes[1].mix: only a mixed regime takes it",
        ),
        (
            lambda d: d["regimes"].append({"name": "mix", "data": "mixed", "sizes": [10], "synthetic_per_class": 100,
                                           "synthetic_weight": 0.5, "synthetic_probability": 0.5}),
            "regimes[2].mix.synthetic_probability: give it or synthetic_weight, not both",
        ),
        (lambda d: d.update(audit={"fold": 3}), "audit.fold: unknown key; valid keys here: folds, method"),
        (lambda d: d.update(audit={"folds": 1}), "audit: invalid audit setting folds=1"),
    ],
)
def test_bad_config_names_the_key(change, expected: str) -> None:
    assert error_of(config_with(change)).startswith(expected)


def test_noise_robust_regimes_describe_their_treatment() -> None:
    config = parse_config(
        config_with(
            lambda d: d.update(
                audit={"folds": 3, "method": "deterministic"},
                regimes=[
                    *d["regimes"],
                    {"name": "filtered", "data": "synthetic", "sizes": [10], "filter": {"drop_top": 0.1}},
                    {"name": "top 20", "data": "synthetic", "sizes": [10], "filter": {"drop_top": 20}},
                    {"name": "balanced", "data": "synthetic", "sizes": [10],
                     "filter": {"drop_top": 0.1, "per_class": True}},
                    {"name": "weighted", "data": "synthetic", "sizes": [10], "weights": "audit",
                     "filter": {"threshold": 0.9, "drop_duplicates": True}},
                    {"name": "gce", "data": "synthetic", "sizes": [10],
                     "method_params": {"loss": "generalized_cross_entropy"}},
                    {"name": "real smoothed", "data": "real", "sizes": [10], "method_params": {"label_smoothing": 0.1}},
                ],
            )
        )
    )
    regimes = {regime.name: regime for regime in config.regimes}
    assert regimes["synthetic"].treatment is None
    assert regimes["filtered"].treatment == "filtered: top 10 % by audit score"
    assert regimes["top 20"].filter.drop_top == 20 and regimes["top 20"].treatment == "filtered: top 20 by audit score"
    assert regimes["balanced"].treatment == "filtered: top 10 % of each class by audit score"
    assert regimes["weighted"].treatment == "filtered: audit score ≥ 0.9 + duplicates, audit-weighted"
    assert regimes["gce"].treatment == "loss=generalized_cross_entropy"
    # Baselines are the plain regimes; each treated regime is compared with its plain counterpart.
    assert config.plain_regime("real").name == "real" and config.plain_regime("synthetic").name == "synthetic"
    assert config.untreated_counterpart(regimes["gce"]).name == "synthetic"
    assert config.untreated_counterpart(regimes["real smoothed"]).name == "real"
    assert config.untreated_counterpart(regimes["synthetic"]) is None
    assert config.audited_sources() == ["ddpm"]


def test_load_config_names_the_file_and_resolves_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "pool").mkdir()
    data = config_with(lambda d: d["real"].update(train="pool"))
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    assert config.real.train == str((tmp_path / "pool").resolve())
    assert config.real.test == "fashion-mnist:test"  # a built-in name stays a name

    path.write_text("real: [unclosed\n")
    with pytest.raises(ConfigError, match=r"study\.yaml: line \d+ is not valid YAML"):
        load_config(path)
    path.write_text(yaml.safe_dump(config_with(lambda d: d["real"].update(tset="x"))))
    with pytest.raises(ConfigError, match=r"study\.yaml: real\.tset: unknown key"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot read the study config"):
        load_config(tmp_path / "missing.yaml")


def test_demo_and_example_configs_validate() -> None:
    config = demo_config()
    assert config.real.train == "fashion-mnist:train[50000:]" and config.real.test == "fashion-mnist:test"
    assert {m.key for m in config.methods} >= {"deterministic", "temperature", "ensemble", "bnn"}
    assert config.seeds == [0, 1, 2] and [o.name for o in config.ood] == ["digits"]
    assert {r.data for r in config.regimes} == {"real", "synthetic", "mixed"}
    # real; real + classical; real + generated; real + generated + classical, at 10 and 30 per class
    kinds = {(r.data, config.augment_label(r)) for r in config.regimes if {10, 30} <= set(r.sizes)}
    assert kinds == {(data, policy) for data in ("real", "mixed") for policy in ("none", "flip-crop", "mixup")}
    examples = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
    assert examples, "examples/*.yaml are missing"
    for study in [config, *(load_config(example) for example in examples)]:
        # A step budget, not a number of epochs, so that small sets train as long as large ones (issue 18):
        # exactly `max_steps` for every unit (the demo), or at least `min_steps` (the examples).
        params = study.method_params
        assert params.get("epochs") is None and (params.get("max_steps") or params.get("min_steps")), study.title
    assert config.method_params["max_steps"] and "min_steps" not in config.method_params


def test_synthetic_probability_samples_batches_by_per_set_weights() -> None:
    from synthaug.study.units import plan_units, unit_method_params

    data = copy.deepcopy(BASE)
    data["regimes"].append({"name": "mix", "data": "mixed", "sizes": [10], "synthetic_per_class": 100,
                            "synthetic_probability": 0.5})  # fmt: skip
    config = parse_config(data)
    params = {unit.regime.name: unit_method_params(config, unit) for unit in plan_units(config)}
    assert params["mix"]["weighted_sampling"] is True
    assert "weighted_sampling" not in params["real"] and "weighted_sampling" not in params["synthetic"]


# -- sections of a regime: `mix` and `targeted`, and the flat keys of older configs ------------

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_every_example_loads_and_survives_a_round_trip_through_the_resolved_config(path: Path) -> None:
    from synthaug.study.config import config_to_dict

    config = load_config(path)
    resolved = config_to_dict(config)
    assert parse_config(resolved) == config  # what config.resolved.yaml holds reads back the same
    for regime in resolved["regimes"]:
        assert not {"synthetic_per_class", "budget", "rounds", "method"} & set(regime)  # written nested


def test_the_demo_config_loads_nested() -> None:
    config = demo_config()
    mixed = [regime for regime in config.regimes if regime.data == "mixed"]
    assert mixed and all(regime.mix is not None and regime.mix.synthetic_per_class for regime in mixed)


def test_flat_keys_of_older_configs_go_into_their_sections() -> None:
    from synthaug.study.config import Mixing, Targeting

    flat = config_with(lambda d: d["regimes"].extend([
        {"name": "mix", "data": "mixed", "sizes": [10], "synthetic_per_class": 50, "synthetic_weight": 0.3},
        {"name": "targeted", "data": "mixed", "sizes": [10], "budget": 40, "method": "deterministic"},
    ]))  # fmt: skip
    nested = config_with(lambda d: d["regimes"].extend([
        {"name": "mix", "data": "mixed", "sizes": [10], "mix": {"synthetic_per_class": 50, "synthetic_weight": 0.3}},
        {"name": "targeted", "data": "mixed", "sizes": [10], "targeted": {"budget": 40, "method": "deterministic"}},
    ]))  # fmt: skip
    config = parse_config(flat)
    assert config == parse_config(nested)
    mix, targeted = config.regimes[2:]
    assert mix.mix == Mixing(synthetic_per_class=50, synthetic_weight=0.3) and mix.synthetic_per_class == 50
    # The targeted defaults are the section's, written once.
    assert targeted.targeted == Targeting(budget=40, method="deterministic", rounds=4, allocate="epistemic", floor=0.2)
    assert targeted.treatment == "targeted (epistemic): 40 images in 4 rounds"
    assert error_of(config_with(lambda d: d["regimes"].append(
        {"name": "t", "data": "mixed", "sizes": [10], "budget": 40, "targeted": {"budget": 40, "method": "x"}}
    ))) == "regimes[2].budget: give it inside `targeted`, not beside it"  # fmt: skip
    assert error_of(config_with(lambda d: d["regimes"].append(
        {"name": "t", "data": "real", "sizes": [10], "targeted": {"budget": 40, "method": "deterministic"}}
    ))) == "regimes[2].targeted: only a synthetic or mixed regime takes it"  # fmt: skip


def test_a_run_folder_bound_with_flat_keys_resumes_under_the_nested_config(tmp_path: Path) -> None:
    from synthaug.study.run_folder import RunFolder

    flat = config_with(lambda d: d["regimes"].append(
        {"name": "mix", "data": "mixed", "sizes": [10], "synthetic_per_class": 50}))  # fmt: skip
    folder = RunFolder(tmp_path / "run")
    folder.root.mkdir()
    folder.config.write_text(yaml.safe_dump(flat, sort_keys=False))
    folder.bind(parse_config(flat))  # no difference reported
    changed = copy.deepcopy(flat)
    changed["regimes"][2]["synthetic_per_class"] = 60
    with pytest.raises(ConfigError, match=r"first difference at `regimes\[2\]\.mix\.synthetic_per_class`"):
        folder.bind(parse_config(changed))


def test_every_field_is_described_in_the_json_schema() -> None:
    from synthaug.study.config import StudyConfig

    schema = StudyConfig.model_json_schema()
    models = {"StudyConfig": schema, **schema["$defs"]}
    assert {"Regime", "Mixing", "Targeting", "GenerationSpec"} <= set(models)
    undescribed = [f"{name}.{key}" for name, model in models.items()
                   for key, field in model.get("properties", {}).items() if not field.get("description")]
    assert undescribed == []
    assert schema["$defs"]["Targeting"]["properties"]["rounds"]["default"] == 4


def test_every_problem_is_listed_one_line_each() -> None:
    data = config_with(lambda d: d.update(colour="blue", seeds=[0, "one"]))
    del data["real"]
    data["regimes"][1]["sizez"] = [1]
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    lines = str(caught.value).splitlines()
    assert lines[0] == "4 problems:"
    assert sorted(line.strip().split(":")[0] for line in lines[1:]) == [
        "colour", "real", "regimes[1].sizez", "seeds[1]"
    ]  # fmt: skip
    assert "  real: missing required key" in lines
    assert "  seeds[1]: input should be a valid integer, unable to parse string as an integer (got 'one')" in lines


def test_a_long_list_of_problems_is_cut_short() -> None:
    data = config_with(lambda d: d.update({f"unknown_{index}": index for index in range(11)}))
    lines = str(pytest.raises(ConfigError, parse_config, data).value).splitlines()
    assert lines[0] == "11 problems:"
    assert len(lines) == 1 + 8 + 1 and lines[-1] == "  and 3 more"


def test_every_cross_key_problem_is_listed_with_methods_checked_when_read() -> None:
    """Past the schema, the checks that need several keys (and the methods, built with their
    hyper-parameters) list every problem too, each naming where it is set; near misses get a
    suggestion. Before, a misspelt method key surfaced when the first unit trained."""
    data = config_with(lambda d: d.update(
        methods=["determinstic", {"key": "ensemble", "params": {"num_membrs": 3}}, "temperature"],
        method_params={"lerning_rate": 0.1},
    ))  # fmt: skip
    data["regimes"][1]["source"] = "dpm"
    data["regimes"].append({"name": "again", "data": "real", "sizes": [10]})
    lines = str(pytest.raises(ConfigError, parse_config, data).value).splitlines()
    assert lines == [
        "5 problems:",
        "  regimes: at most one regime may have `data: real` without `method_params` per `augment` policy "
        "(it is the baseline of that policy)",
        "  methods[0].key: unknown method 'determinstic' (did you mean 'deterministic'?); choose one of: bnn, "
        "deterministic, ensemble, laplace, mc-dropout, temperature",
        "  method_params: method 'ensemble' has no hyper-parameter lerning_rate (did you mean 'learning_rate'?)",
        "  methods[1].params: method 'ensemble' has no hyper-parameter num_membrs (did you mean 'num_members'?)",
        "  regimes[1].source: unknown source 'dpm'; choose one of: ddpm",
    ]


def test_a_regime_hyper_parameter_problem_is_one_line_for_all_its_methods() -> None:
    data = config_with(lambda d: d.update(methods=["deterministic", "temperature"]))
    data["regimes"][1]["method_params"] = {"loss": "huber"}
    message = str(pytest.raises(ConfigError, parse_config, data).value)
    assert message.startswith("regimes[1].method_params: invalid training setting loss='huber'")
    assert "\n" not in message
