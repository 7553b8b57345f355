"""The study config: validation errors are one line naming the key path."""

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
            "regimes[2].synthetic_per_class: missing",
        ),
        (lambda d: d["regimes"][0].update(name="synthetic"), "regimes: regime names must be distinct"),
        (lambda d: d["regimes"][0].update(methods=["bnn"]), "regimes[0].methods[0]: unknown method 'bnn'"),
        (
            lambda d: d["synthetic"][0].update(path="/somewhere"),
            "synthetic[0]: give exactly one of `path` or `generate`",
        ),
        (lambda d: d.update(ood=[{"name": "held"}]), "ood[0]: give exactly one of `data` or `holdout_classes`"),
        (lambda d: d.update(methods=[{"key": "bnn", "sizes": []}]), "methods[0].sizes: must be a non-empty list"),
    ],
)
def test_bad_config_names_the_key(change, expected: str) -> None:
    assert error_of(config_with(change)).startswith(expected)


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
    assert {m.key for m in config.methods} >= {"deterministic", "temperature", "mc-dropout", "ensemble", "bnn"}
    assert config.seeds == [0, 1, 2] and [o.name for o in config.ood] == ["digits"]
    assert {r.data for r in config.regimes} == {"real", "synthetic", "mixed"}
    examples = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
    assert examples, "examples/*.yaml are missing"
    for example in examples:
        load_config(example)
