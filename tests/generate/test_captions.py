"""Caption prompts from a tiny random BLIP saved with ``save_pretrained``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from synthaug.data import ImageDataset
from synthaug.errors import ConfigError
from synthaug.generate.prompts import PromptSpec

transformers = pytest.importorskip("transformers")

from synthaug.generate.captions import caption_images, caption_prompt_spec  # noqa: E402


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from helpers.tiny_hf_models import save_tiny_blip

    return save_tiny_blip(tmp_path_factory.mktemp("blip") / "tiny-blip")


def _dataset(make_pattern_dataset: Callable[..., ImageDataset]) -> ImageDataset:
    data = make_pattern_dataset(3, seed=0)
    return data.subset(np.r_[np.arange(len(data)), 0])  # the first image twice: one caption for both


@pytest.mark.slow  # builds and loads tiny transformers/diffusers models (seconds on 2 cores)
def test_captions_are_the_models_own_cached_by_content(tiny_blip, tmp_path, make_pattern_dataset):
    data = _dataset(make_pattern_dataset)
    first = caption_images(data, tiny_blip, cache_dir=tmp_path, batch_size=4, device="cpu")
    assert first.captioned == len(data) - 1 and first.captions[0] == first.captions[-1]
    assert all(caption.strip() for caption in first.captions)
    # Reference: the model's own greedy decoding of one image.
    processor = transformers.AutoProcessor.from_pretrained(tiny_blip)
    model = transformers.AutoModelForImageTextToText.from_pretrained(tiny_blip).eval()
    pixels = processor(images=[data[4][0].convert("RGB")], return_tensors="pt")["pixel_values"]
    tokens = model.generate(pixel_values=pixels, do_sample=False, max_new_tokens=30, min_new_tokens=3)
    assert first.captions[4] == " ".join(processor.batch_decode(tokens, skip_special_tokens=True)[0].split())

    from synthaug.audit.duplicates import pixel_digests

    assert list(first.sha256) == pixel_digests(data)  # the same content key as the duplicate check
    again = caption_images(data, tiny_blip, cache_dir=tmp_path, device="cpu")
    assert again.captioned == 0 and again.captions == first.captions


@pytest.mark.slow  # builds and loads tiny transformers/diffusers models (seconds on 2 cores)
def test_caption_prompts_join_the_class_name_and_record_the_image(tiny_blip, tmp_path, make_pattern_dataset):
    data = _dataset(make_pattern_dataset)
    captions = caption_images(data, tiny_blip, cache_dir=tmp_path, device="cpu")
    label = data.classes[int(data.targets[0])]
    spec = caption_prompt_spec(data, captions, base=PromptSpec(class_descriptions={label: "the pattern"}))
    spec.validate(data.classes)
    prompts = spec.class_prompts[label]
    assert prompts[0] == f"a photo of a {label} (the pattern), {captions.captions[0]}"
    assert len(prompts) == len(set(prompts)) <= 3  # the repeated image adds no prompt
    choice = spec.choose(label, 0, 0, seed=1)
    assert choice.options["origin"] == {"kind": "caption", "model": str(tiny_blip),
                                        "image_sha256": captions.sha256[0], "image": f"{data.name}[0]"}


def test_a_missing_model_folder_is_one_line(tmp_path, make_pattern_dataset):
    with pytest.raises(ConfigError, match="no such folder"):
        caption_images(make_pattern_dataset(1), tmp_path / "nothing", cache_dir=tmp_path)
