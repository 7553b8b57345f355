"""Prompt expansion, per-image seeds, class folder names and the manifest reader."""

from __future__ import annotations

import json

import pytest

from synthaug.errors import ConfigError, DataError
from synthaug.generate.engine import derive_seed
from synthaug.generate.manifest import read_jsonl
from synthaug.generate.prompts import BUILTIN_BACKGROUNDS, PromptSpec
from synthaug.generate.slug import class_folders, slugify


def test_diversity_options_are_drawn_from_the_seed_and_recorded():
    spec = PromptSpec(
        templates=("a photo of a {label}", "a picture of a {label}"),
        descriptions={"Trouser": ("pair of jeans",)},
        backgrounds=BUILTIN_BACKGROUNDS,
        styles=("studio photograph", "amateur photo"),
        guidance_scale_range=(1.5, 7.5),
    )
    assert spec.variants("Trouser") == [
        "a photo of a Trouser",
        "a photo of a pair of jeans",
        "a picture of a Trouser",
        "a picture of a pair of jeans",
    ]
    choices = [spec.choose("Trouser", index, 0, derive_seed(0, "Trouser", index, 0)) for index in range(40)]
    again = [spec.choose("Trouser", index, 0, derive_seed(0, "Trouser", index, 0)) for index in range(40)]
    assert choices == again
    assert {c.options["variant"] for c in choices} == {0, 1, 2, 3}  # variants rotate with the index
    assert len({c.options["background"] for c in choices}) > 5
    assert all(1.5 <= c.guidance_scale <= 7.5 for c in choices) and len({c.guidance_scale for c in choices}) > 30
    first = choices[0]
    assert first.prompt == f"a photo of a Trouser, {first.options['background']}, {first.options['style']}"
    # A refused slot moves on to the next variant.
    assert spec.choose("Trouser", 0, 1, 5).options["variant"] == 1


def test_image_seeds_do_not_depend_on_other_classes_or_order():
    assert derive_seed(0, "Bag", 3, 0) == derive_seed(0, "Bag", 3, 0)
    assert len({derive_seed(0, "Bag", i, a) for i in range(50) for a in range(3)}) == 150
    assert derive_seed(1, "Bag", 3, 0) != derive_seed(0, "Bag", 3, 0)
    assert 0 <= derive_seed(7, "x", 0, 0) < 2**63


def test_prompt_files_in_both_forms(tmp_path):
    simple = tmp_path / "prompts.yaml"
    simple.write_text("T-shirt/top: [a folded tee, a cotton T-shirt]\nTrouser: a photo of trousers\n")
    spec = PromptSpec.from_file(simple)
    assert spec.variants("T-shirt/top") == ["a folded tee", "a cotton T-shirt"]
    assert spec.variants("Bag") == ["a photo of a Bag"]  # classes without a list use the template

    structured = tmp_path / "prompts.json"
    structured.write_text(
        json.dumps(
            {
                "templates": ["{label}, product photo"],
                "descriptions": {"Bag": ["handbag"]},
                "backgrounds": "builtin",
                "styles": ["catalogue photo"],
                "guidance_scale": [2, 4],
            }
        )
    )
    spec = PromptSpec.from_file(structured)
    assert spec.variants("Bag") == ["Bag, product photo", "handbag, product photo"]
    assert spec.backgrounds == BUILTIN_BACKGROUNDS and spec.guidance_scale_range == (2.0, 4.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (PromptSpec(templates=("a photo",)), "no {label} placeholder"),
        (PromptSpec(class_prompts={"Sandal": ("x",)}), "'Sandal' not among the classes"),
        (PromptSpec(descriptions={"Bag": ()}), "empty list"),
        (PromptSpec(guidance_scale_range=(5.0, 2.0)), "LOW <= HIGH"),
    ],
)
def test_bad_prompt_specs_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        spec.validate(["Bag", "Trouser"])


def test_unreadable_prompt_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        PromptSpec.from_file(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("Bag: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid"):
        PromptSpec.from_file(broken)


def test_slugs_are_safe_and_collisions_get_a_stable_suffix():
    assert slugify("T-shirt/top") == "t-shirt-top"
    assert slugify("../../x") == "x"
    assert slugify("Café au lait") == "cafe-au-lait"
    for label in ("..", "/", "???", "日本"):
        slug = slugify(label)
        assert slug.startswith("class-") and "/" not in slug and slug not in (".", "..")
    folders = class_folders(["T-shirt/top", "t-shirt top", "Bag"])
    assert folders["Bag"] == "bag" and len(set(folders.values())) == 3
    assert class_folders(["Bag", "t-shirt top", "T-shirt/top"]) == folders  # order does not matter
    # Folders of an earlier run never change; a newcomer that collides gets the suffix.
    extended = class_folders(["T-shirt/top", "t-shirt top"], existing={"T-shirt/top": "t-shirt-top"})
    assert extended["T-shirt/top"] == "t-shirt-top" and extended["t-shirt top"].startswith("t-shirt-top-")


def test_manifest_reader_drops_only_a_torn_last_line(tmp_path):
    path = tmp_path / "metadata.jsonl"
    path.write_text('{"file_name": "a.png"}\n{"file_name": "b.png"}\n{"file_na')
    rows, needs_rewrite = read_jsonl(path)
    assert [r["file_name"] for r in rows] == ["a.png", "b.png"] and needs_rewrite
    path.write_text('{"file_name": "a.png"}\n')
    assert read_jsonl(path) == ([{"file_name": "a.png"}], False)
    path.write_text('{"file_name": "a.png"}\nnot json\n{"file_name": "b.png"}\n')
    with pytest.raises(DataError, match="line 2"):
        read_jsonl(path)
