"""``synthaug generate --expand/--describe/--negative-prompt/--captions-model`` and ``synthaug retrieve``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import synthaug.cli.main  # noqa: F401  (registers the commands)
from synthaug.cli._app import app
from synthaug.errors import ConfigError
from synthaug.generate.prompts import DEFAULT_NEGATIVE_PROMPT

OPENAI = ["--backend", "openai", "--model", "dall-e-2", "--size", "256x256"]


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def _text(result) -> str:
    """The output as one line (rich wraps long lines at the terminal width)."""
    return " ".join(result.output.split())


def _chat_calls(server) -> int:
    return sum(call["endpoint"] == "/v1/chat/completions" for call in server.calls)


def test_expand_writes_prompts_once_and_the_manifest_names_them(openai_server, tmp_path):
    classes = tmp_path / "classes.yaml"
    classes.write_text("crane: the bird\nTrouser:\n")
    out = tmp_path / "out"
    args = ["generate", "--out", str(out), "--classes-file", str(classes), "--per-class", "3", *OPENAI,
            "--expand", "openai:gpt-4o-mini", "--expand-per-class", "2", "--describe", "Trouser=the garment"]

    plan = CliRunner().invoke(app, [*args, "--dry-run"])
    assert plan.exit_code == 0, plan.output
    assert "2 to ask in at most 6 call(s)" in _text(plan) and _chat_calls(openai_server) == 0

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "prompt expansion: 2 call(s)" in _text(result) and _chat_calls(openai_server) == 2
    saved = json.loads((out / "prompts.json").read_text())
    assert saved["classes"]["Trouser"]["description"] == "the garment"
    rows = _rows(out)
    assert len(rows) == 6 and all(row["prompt_options"]["origin"]["kind"] == "expand" for row in rows)
    assert {row["prompt"] for row in rows if row["label"] == "crane"} == set(saved["classes"]["crane"]["prompts"])

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "generated 0, reused 6" in _text(again)
    assert _chat_calls(openai_server) == 2  # the saved prompts were reused, the text model not asked

    other = CliRunner().invoke(app, [*args, "--expand-per-class", "3"])
    assert isinstance(other.exception, ConfigError) and "per_class: 2 -> 3" in str(other.exception)


def test_descriptions_are_in_every_template_prompt(openai_server, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["generate", "--out", str(out), "--classes", "crane", "--per-class", "2",
                                      *OPENAI, "--describe", "crane=the bird"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {row["prompt"] for row in _rows(out)} == {"a photo of a crane (the bird)"}
    bad = CliRunner().invoke(app, ["generate", "--out", str(out), "--classes", "crane", "--per-class", "2",
                                   *OPENAI, "--describe", "crane"])  # fmt: skip
    assert isinstance(bad.exception, ConfigError) and "LABEL=DESCRIPTION" in str(bad.exception)


@pytest.mark.slow  # builds and loads tiny transformers/diffusers models (seconds on 2 cores)
def test_the_default_negative_prompt_reaches_the_pipeline_and_the_manifest(tiny_diffusers_pipeline, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["generate", "--out", str(out), "--classes", "a cat", "--per-class", "1",
                                      "--backend", "diffusers", "--model", str(tiny_diffusers_pipeline),
                                      "--size", "16x16", "--steps", "2", "--negative-prompt", "default"])
    assert result.exit_code == 0, result.output
    assert _rows(out)[0]["params"]["negative_prompt"] == DEFAULT_NEGATIVE_PROMPT


def test_a_backend_without_negative_prompts_refuses_one(openai_server, tmp_path):
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "o"), "--classes", "cat", "--per-class",
                                      "1", *OPENAI, "--negative-prompt", "default"])  # fmt: skip
    assert isinstance(result.exception, ConfigError) and "negative_prompt" in str(result.exception)
    assert openai_server.calls == []


@pytest.mark.slow  # builds and loads tiny transformers/diffusers models (seconds on 2 cores)
def test_caption_prompts_from_the_command_line(openai_server, tmp_path, tiny_image_folder, monkeypatch):
    pytest.importorskip("transformers")
    from helpers.tiny_hf_models import save_tiny_blip

    monkeypatch.setenv("SYNTHAUG_CACHE_DIR", str(tmp_path / "cache"))
    blip = save_tiny_blip(tmp_path / "blip")
    out = tmp_path / "out"
    label = min(p.name for p in tiny_image_folder.iterdir())
    result = CliRunner().invoke(app, ["generate", "--out", str(out), "--classes", label, "--per-class", "2", *OPENAI,
                                      "--captions-model", str(blip), "--captions-of", str(tiny_image_folder)])
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    assert all(row["prompt"].startswith(f"a photo of a {label}, ") for row in rows)
    origin = rows[0]["prompt_options"]["origin"]
    assert origin["kind"] == "caption" and origin["image"].startswith(str(tiny_image_folder / label))


@pytest.mark.slow  # builds and loads tiny transformers/diffusers models (seconds on 2 cores)
def test_retrieve_from_the_command_line(tmp_path, tiny_image_folder):
    pytest.importorskip("transformers")
    from helpers.tiny_hf_models import save_tiny_clip

    clip = save_tiny_clip(tmp_path / "clip")
    out = tmp_path / "retrieved"
    result = CliRunner().invoke(app, ["retrieve", str(tiny_image_folder), "--clip", str(clip), "--per-class", "4",
                                      "--out", str(out), "--classes", "cat,dog", "--describe", "cat=the animal",
                                      "--exclude", str(tiny_image_folder), "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    # Every pool image is in the excluded set: nothing may be retrieved.
    assert "retrieved 0 of 90" in _text(result) and _rows(out) == []
    missing = CliRunner().invoke(app, ["retrieve", "digits", "--clip", str(tmp_path / "none"), "--per-class", "1",
                                       "--out", str(out), "--classes", "cat"])  # fmt: skip
    assert missing.exit_code != 0 and "no such CLIP model folder" in str(missing.exception)
