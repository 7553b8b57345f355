"""Guided generation on the openai (fake server) and diffusers (tiny pipeline) backends."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthaug.data import ImageDataset
from synthaug.errors import ConfigError
from synthaug.generate import generate_dataset
from synthaug.generate.backends import ImageRequest, make_backend, parse_size
from synthaug.generate.guided import load_guidance
from synthaug.generate.pricing import edit_input_price, image_price, usage_cost

from helpers.fake_openai_server import FAST_RETRIES

CLASSES = ["cat", "dog"]


@pytest.fixture(scope="module")
def real() -> ImageDataset:
    """Two real 20x20 RGB images per class, seeded."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, 20, 20, 3), dtype=np.uint8)
    return ImageDataset.from_arrays(images, [0, 0, 1, 1], CLASSES, name="real")


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]


def png_sha256(image: Image.Image, size: tuple[int, int] | None = None) -> str:
    image = image.convert("RGB")
    if size is not None:
        image = image.resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def openai_run(out: Path, model: str, guidance, per_class: int = 3, **kwargs):
    return generate_dataset(out, CLASSES, per_class, backend="openai", model=model, init_images=guidance,
                            backend_options={**FAST_RETRIES, "concurrency": 2}, **kwargs)  # fmt: skip


def test_gpt_image_edits_send_the_real_image_with_the_prompt(openai_server, real, tmp_path):
    guidance = load_guidance(real, CLASSES)
    summary = openai_run(tmp_path / "out", "gpt-image-1-mini", guidance, params={"size": "1024x1024", "quality": "low"})
    assert summary["generated"] == 6
    edits = [call for call in openai_server.calls if call["endpoint"] == "/v1/images/edits"]
    assert len(edits) == 6 and all(call["prompt"].startswith("a photo of a") for call in edits)
    sources = {png_sha256(image.image) for images in guidance.images.values() for image in images}
    assert {call["image_sha256"] for call in edits} == sources
    for row in rows(tmp_path / "out"):
        assert row["init_image"]["strength"] is None and row["init_image"]["variant"] == row["index"] // 2
        # The actual cost counts the input image's tokens.
        assert row["cost_usd"] == pytest.approx(usage_cost("gpt-image-1-mini", row["extra"]["usage"]))
        assert row["extra"]["usage"]["input_tokens_details"]["image_tokens"] > 0


def test_dall_e_2_variations_send_a_square_png_and_no_prompt(openai_server, real, tmp_path):
    summary = openai_run(tmp_path / "out", "dall-e-2", load_guidance(real, CLASSES), params={"size": "256x256"})
    assert summary["generated"] == 6 and summary["cost_usd"] == pytest.approx(6 * 0.016)
    variations = [call for call in openai_server.calls if call["endpoint"] == "/v1/images/variations"]
    assert len(variations) == 6
    assert all(call["image_size"] == "256x256" and "prompt" not in call for call in variations)
    assert Image.open(tmp_path / "out" / rows(tmp_path / "out")[0]["file_name"]).size == (256, 256)


def test_openai_refuses_dall_e_3_and_strengths_before_sending(openai_server, real, tmp_path):
    with pytest.raises(ConfigError, match="dall-e-3 cannot start from a real image"):
        openai_run(tmp_path / "a", "dall-e-3", load_guidance(real, CLASSES))
    with pytest.raises(ConfigError, match="no strength"):
        openai_run(tmp_path / "b", "gpt-image-1", load_guidance(real, CLASSES, "0.5"))
    assert openai_server.calls == [] and not (tmp_path / "a").exists()


def test_edit_estimates_include_the_input_image_and_max_cost_holds(openai_server, real, tmp_path):
    per_edit = image_price("gpt-image-1", "low", "1024x1024") + edit_input_price("gpt-image-1")
    assert edit_input_price("gpt-image-1") > 0
    params = {"size": "1024x1024", "quality": "low"}
    plan = openai_run(tmp_path / "o", "gpt-image-1", load_guidance(real, CLASSES), params=params, dry_run=True)
    assert plan["estimated_cost_usd"] == pytest.approx(6 * per_edit)
    summary = openai_run(tmp_path / "o", "gpt-image-1", load_guidance(real, CLASSES), params=params,
                         max_cost=2.5 * per_edit)  # fmt: skip
    assert summary["generated"] == 2 and summary["stopped_by_max_cost"]
    assert summary["total_cost_usd"] <= 2.5 * per_edit


# --- diffusers -------------------------------------------------------------------------


def diffusers_request(real_image, strength: float | None, seed: int = 3) -> ImageRequest:
    guidance = load_guidance(real_image, CLASSES, "0.5")
    return ImageRequest("cat", 0, 0, seed=seed, prompt="a photo of a cat", params={"steps": 4},
                        init_image=guidance.images["cat"][0] if strength else None, strength=strength)  # fmt: skip


def test_diffusers_image_to_image_is_seeded_and_strength_one_is_text_to_image(tiny_diffusers_pipeline, real):
    with make_backend("diffusers", str(tiny_diffusers_pipeline), batch_size=2) as backend:
        (guided,) = backend.generate([diffusers_request(real, 0.5)])
        (again,) = backend.generate([diffusers_request(real, 0.5)])
        (stronger,) = backend.generate([diffusers_request(real, 0.75)])
        (text_only,) = backend.generate([diffusers_request(real, None)])
        (full,) = backend.generate([diffusers_request(real, 1.0)])
    assert guided.extra["pipeline"] == "StableDiffusionImg2ImgPipeline" and guided.extra["strength"] == 0.5
    assert guided.image.size == (16, 16)
    assert np.array_equal(np.asarray(guided.image), np.asarray(again.image))
    assert not np.array_equal(np.asarray(guided.image), np.asarray(stronger.image))
    assert full.extra["pipeline"] == "StableDiffusionPipeline"
    assert np.array_equal(np.asarray(full.image), np.asarray(text_only.image))


def test_diffusers_guided_run_through_the_engine(tiny_diffusers_pipeline, real, tmp_path):
    guidance = load_guidance(real, CLASSES, "0.5,0.75")
    summary = generate_dataset(tmp_path / "out", CLASSES, 4, backend="diffusers", model=str(tiny_diffusers_pipeline),
                               params={"steps": 4, "size": "16x16"}, init_images=guidance,
                               backend_options={"batch_size": 3})  # fmt: skip
    assert summary["generated"] == 8
    for row in rows(tmp_path / "out"):
        assert row["init_image"]["sha256"] == guidance.images[row["label"]][row["index"] % 2].sha256
        assert row["extra"]["strength"] == row["init_image"]["strength"]


def test_every_backend_that_takes_real_images_records_their_provenance(backend_factory, tmp_path):
    """The guided contract, run on every registered backend (cases from conftest.py)."""
    key, case = backend_factory
    backend = case.make()
    if not backend.supports_init_images:
        with pytest.raises(ConfigError, match="cannot start from real images"):
            backend.validate_guidance((0.5,))
        return
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(4, 28, 28, 3), dtype=np.uint8)
    real = ImageDataset.from_arrays(images, [0, 0, 1, 1], case.classes, name="real")
    try:
        backend.validate_guidance(())
        strengths = None  # a backend without strengths (openai edits and variations)
    except ConfigError:
        strengths = "0.6"
    guidance = load_guidance(real, case.classes, strengths)
    summary = generate_dataset(tmp_path / "out", case.classes, 3, backend=backend, params=case.params,
                               init_images=guidance)  # fmt: skip
    assert summary["generated"] == 6
    for row in rows(tmp_path / "out"):
        source = guidance.images[row["label"]][row["index"] % 2]
        assert row["init_image"] == {"file_name": source.file_name, "sha256": source.sha256,
                                     "strength": 0.6 if strengths else None, "variant": row["index"] // 2}  # fmt: skip
        assert Image.open(tmp_path / "out" / row["file_name"]).size == parse_size(case.params["size"])
