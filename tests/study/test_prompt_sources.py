"""Study generation specs with prompts beyond templates (issue 22): ``prompt: {expand: ...}``
(a text model writes them, once: a rerun asks nothing again), ``prompt: {captions: ...}``
(captions of the real training images, never of test or validation images), ``classes:``
descriptions and ``negative_prompt``, all through the one generation entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from synthaug.errors import ConfigError
from synthaug.study import load_config, parse_config, run_study
from synthaug.study.plan import plan_study

from helpers.fake_openai_server import FAST_RETRIES, FakeImagesServer
from helpers.tiny_hf_models import save_tiny_blip
from helpers.tiny_study import CLASSES, tiny_config_data, write_tiny_folders

PER_CLASS = 3


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch):
    with FakeImagesServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


def _config(tmp_path: Path, prompt: dict, **spec: object) -> Path:
    data = tiny_config_data(write_tiny_folders(tmp_path / "data"))
    data["synthetic"] = [{"name": "dall-e-2", "generate": {
        "backend": "openai", "model": "dall-e-2", "per_class": PER_CLASS, "params": {"size": "256x256"},
        "backend_options": FAST_RETRIES, "prompt": prompt, **spec}}]  # fmt: skip
    data["regimes"] = [{"name": "real", "data": "real", "sizes": [3]},
                       {"name": "synthetic", "data": "synthetic", "sizes": [3]}]  # fmt: skip
    data.update(methods=["deterministic"], seeds=[0], ood=[], inspect="off", bootstrap_resamples=100)
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _rows(run_dir: Path) -> list[dict]:
    (manifest,) = (run_dir / "cache" / "generated").glob("*/metadata.jsonl")
    return [json.loads(line) for line in manifest.read_text().splitlines()]


@pytest.mark.slow
def test_expanded_prompts_are_asked_once_priced_in_the_plan_and_recorded_with_each_image(
    tmp_path: Path, openai_server: FakeImagesServer
) -> None:
    config = load_config(_config(tmp_path, {"expand": {"backend": "openai", "per_class": 4}},
                                 classes={"bar-top": "a bar near the top"}))  # fmt: skip
    run_dir = tmp_path / "run"
    (source,) = plan_study(config, run_dir).sources
    assert source.text_model_calls >= len(CLASSES) and source.estimated_cost_usd > 0.016 * PER_CLASS * len(CLASSES)
    assert openai_server.calls == []  # the plan asked nothing

    run_study(config, run_dir)
    chat = [call for call in openai_server.calls if call["endpoint"].endswith("/chat/completions")]
    images = [call for call in openai_server.calls if call["endpoint"].endswith("/images/generations")]
    assert len(chat) == len(CLASSES) and len(images) == PER_CLASS * len(CLASSES)
    asked = {json.dumps(call["messages"]) for call in chat}
    assert any("a bar near the top" in text for text in asked)  # the class description reached the text model
    rows = _rows(run_dir)
    assert all("scene" in row["prompt"] for row in rows)  # the fake text model's prompts, not the template
    assert all(row["prompt_options"]["origin"]["kind"] == "expand" for row in rows), rows[0]

    (run_dir / "results.jsonl").unlink()  # the units again, the prompts from prompts.json
    run_study(config, run_dir)
    assert len([c for c in openai_server.calls if c["endpoint"].endswith("/chat/completions")]) == len(CLASSES)


@pytest.mark.slow
def test_caption_prompts_describe_training_images_only(tmp_path: Path, openai_server: FakeImagesServer) -> None:
    blip = save_tiny_blip(tmp_path / "blip")
    config = load_config(_config(tmp_path, {"captions": {"model": str(blip)}}))
    run_study(config, tmp_path / "run")
    rows = _rows(tmp_path / "run")
    assert len(rows) == PER_CLASS * len(CLASSES)
    origins = [row["prompt_options"]["origin"] for row in rows]
    assert all(origin["kind"] == "caption" for origin in origins)
    test_files = {str(path) for path in (tmp_path / "data" / "test").rglob("*.png")}
    assert not {origin["image"] for origin in origins} & test_files
    assert all(str(tmp_path / "data" / "pool") in origin["image"] for origin in origins)

    # A pool that shares images with the test set is refused before anything is generated.
    data = yaml.safe_load((tmp_path / "study.yaml").read_text())
    data["real"]["test"] = data["real"]["train"]
    before = len(openai_server.calls)
    with pytest.raises(ConfigError, match=r"synthetic\[0\].generate.prompt.captions: \d+ real training image"):
        run_study(parse_config(data), tmp_path / "run2")
    assert len(openai_server.calls) == before


def test_negative_prompt_reaches_the_backend_which_refuses_it_before_generating(
    tmp_path: Path, openai_server: FakeImagesServer
) -> None:
    config = load_config(_config(tmp_path, {"templates": ["a photo of a {label}"]}, negative_prompt="default"))
    with pytest.raises(ConfigError, match="negative_prompt"):
        run_study(config, tmp_path / "run")
    assert openai_server.calls == []
    with pytest.raises(ConfigError, match="either expand or captions"):
        parse_config({**yaml.safe_load((tmp_path / "study.yaml").read_text()), "synthetic": [{"name": "x", "generate": {
            "per_class": 1, "prompt": {"expand": {}, "captions": {"model": "m"}}}}]})  # fmt: skip
