"""The study's one generation entry point: prompt conversion and error naming."""

from __future__ import annotations

import json

import pytest

from synthaug.errors import ConfigError
from synthaug.generate.prompts import PromptSpec
from synthaug.study.config import GenerationSpec
from synthaug.study.generation import generate_from_spec, spec_prompt


def test_a_template_prompt_is_passed_as_is():
    assert spec_prompt(GenerationSpec(per_class=1, prompt="a sketch of a {label}"), "synthetic[0]") == (
        "a sketch of a {label}"
    )


def test_a_prompt_mapping_becomes_a_prompt_spec_with_tuples_inside_per_class_mappings():
    spec = GenerationSpec(per_class=1, prompt={"templates": ["a {label}", "the {label}"],
                                               "class_prompts": {"Bag": ["a leather bag", "a tote"]}})
    prompt = spec_prompt(spec, "synthetic[0]")
    assert isinstance(prompt, PromptSpec)
    assert prompt.templates == ("a {label}", "the {label}")
    assert prompt.class_prompts == {"Bag": ("a leather bag", "a tote")}


def test_an_unknown_prompt_key_names_the_source_key():
    spec = GenerationSpec(per_class=1, prompt={"templatez": ["a {label}"]})
    with pytest.raises(ConfigError, match=r"^synthetic\[2\]\.generate\.prompt: .*templatez"):
        spec_prompt(spec, "synthetic[2]")


def test_generates_with_the_spec_and_names_the_source_on_failure(tmp_path):
    spec = GenerationSpec(backend="ddpm", per_class=2, seed=3, prompt={"templates": ["a sketch of a {label}"]})
    generate_from_spec(tmp_path / "out", spec, ["Bag", "Trouser"], 1, "synthetic[0]", "ddpm")
    rows = [json.loads(line) for line in (tmp_path / "out" / "metadata.jsonl").read_text().splitlines()]
    assert sorted(row["label"] for row in rows) == ["Bag", "Trouser"]  # `per_class` argument, not the spec's
    assert {row["prompt"] for row in rows} == {"a sketch of a Bag", "a sketch of a Trouser"}
    broken = GenerationSpec(backend="no-such-backend", per_class=1)
    with pytest.raises(ConfigError, match=r"^synthetic\[1\] \(broken\): "):
        generate_from_spec(tmp_path / "other", broken, ["Bag"], 1, "synthetic[1]", "broken")
