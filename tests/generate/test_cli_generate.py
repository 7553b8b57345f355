"""``synthaug generate`` through typer (in process) and the console script (subprocess)."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

import synthaug.cli.main  # noqa: F401  (registers the commands)
from synthaug.cli._app import app
from synthaug.errors import ConfigError, GenerationError

from helpers.fake_openai_server import REFUSAL_MARKER

OPENAI = ["--backend", "openai", "--model", "dall-e-2", "--size", "256x256"]


def test_generate_resume_and_dry_run(openai_server, tmp_path):
    classes_file = tmp_path / "classes.txt"
    classes_file.write_text("T-shirt/top\nTrouser\n")
    prompt_file = tmp_path / "prompts.yaml"
    prompt_file.write_text("Trouser: [a photo of jeans, a photo of chinos]\n")
    out = tmp_path / "out"
    args = ["generate", "--out", str(out), "--classes-file", str(classes_file), "--per-class", "2", *OPENAI,
            "--prompt-file", str(prompt_file), "--backgrounds", "builtin", "--concurrency", "2"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "generated 4, reused 0" in result.output and "T-shirt/top" in result.output
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    trouser_prompts = {r["prompt"].split(",")[0] for r in rows if r["label"] == "Trouser"}
    assert trouser_prompts == {"a photo of jeans", "a photo of chinos"}
    assert all("background" in r["prompt_options"] for r in rows)

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and "generated 0, reused 4" in result.output

    plan = CliRunner().invoke(app, [*args[:2], str(tmp_path / "new"), *args[3:], "--dry-run"])
    assert plan.exit_code == 0, plan.output
    assert "4 image(s) to generate" in plan.output and "$0.0640" in plan.output
    assert not (tmp_path / "new").exists() and len(openai_server.calls) == 4


def test_options_a_backend_does_not_take_are_errors(openai_server, tmp_path):
    base = ["generate", "--out", str(tmp_path / "out"), "--classes", "Bag", "--per-class", "1", *OPENAI]
    result = CliRunner().invoke(app, [*base, "--steps", "20"])
    assert isinstance(result.exception, ConfigError) and "does not support steps" in str(result.exception)
    result = CliRunner().invoke(app, [*base, "--device", "cuda"])
    assert isinstance(result.exception, ConfigError) and "does not take the option(s) device" in str(result.exception)
    result = CliRunner().invoke(app, [*base[:5], "--per-class", "1", "--backend", "openai", "--model", "dall-e-3",
                                      "--size", "512x512"])  # fmt: skip
    assert isinstance(result.exception, ConfigError) and "1024x1792" in str(result.exception)
    assert openai_server.calls == []


def test_missing_images_end_in_an_error(openai_server, tmp_path):
    args = ["generate", "--out", str(tmp_path / "out"), "--classes", f"Bag,{REFUSAL_MARKER} thing", "--per-class", "1",
            *OPENAI]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, GenerationError)
    assert "1 image(s) still missing" in str(result.exception) and "rejected.jsonl" in str(result.exception)


def test_bad_key_is_one_line_without_the_key(openai_server, tmp_path, monkeypatch, capfd):
    canary = "sk-CANARY-cli-0987654321"
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    # The console script's own entry point, in process (a subprocess would spend seconds importing).
    monkeypatch.setattr(sys, "argv", ["synthaug", "generate", "--out", str(tmp_path / "out"), "--classes", "Bag",
                                      "--per-class", "2", *OPENAI])  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        synthaug.cli.main.main()
    assert exited.value.code == 1
    captured = capfd.readouterr()
    assert captured.err.strip().splitlines()[-1].startswith("error: OpenAI rejected the API key (HTTP 401)")
    assert "Traceback" not in captured.err
    assert canary not in captured.out + captured.err
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and canary.encode() in p.read_bytes()]


@pytest.mark.parametrize("bad", [["--classes", "Bag", "--classes-file", "x.txt"], []])
def test_classes_come_from_exactly_one_option(bad, tmp_path):
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path), "--per-class", "1", *bad])
    assert isinstance(result.exception, ConfigError) and "--classes" in str(result.exception)


def test_a_missing_api_key_stops_before_the_folder_is_made(openai_server, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "out"
    args = ["generate", "--out", str(out), "--classes", "Bag", "--per-class", "1", *OPENAI]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("OPENAI_API_KEY is not set")
    assert not out.exists() and openai_server.calls == []
    # Pricing a run needs no key.
    plan = CliRunner().invoke(app, [*args, "--dry-run"])
    assert plan.exit_code == 0 and "1 image(s) to generate" in plan.output


@pytest.mark.parametrize("command", ["generate", "retrieve"])
def test_progress_can_be_turned_off_like_every_other_command(command):
    from synthaug.cli.main import app as full_app

    result = CliRunner().invoke(full_app, [command, "--help"], env={"COLUMNS": "200"})
    assert "--progress" in result.output and "--no-progress" in result.output


def test_no_progress_prints_no_progress_lines(openai_server, tmp_path):
    args = ["generate", "--out", str(tmp_path / "out"), "--classes", "Bag", "--per-class", "2", *OPENAI]
    shown = CliRunner().invoke(app, args)
    assert "[generate openai]" in shown.stderr
    quiet = CliRunner().invoke(app, [*args[:2], str(tmp_path / "quiet"), *args[3:], "--no-progress"])
    assert quiet.exit_code == 0, quiet.output
    assert "[generate openai]" not in quiet.stderr and "generated 2" in quiet.output
