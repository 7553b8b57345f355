"""Generators tuned on the real images: ddpm fine-tuning with its near-copy check, diffusers LoRA."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthaug.data import ImageDataset, load_dataset
from synthaug.errors import ConfigError
from synthaug.generate.backends import ImageRequest, make_backend
from synthaug.generate.ddpm.pipeline import DiffusionGenerator
from synthaug.study.tuning import CHECK_FILE, TunedGenerator, tune_and_check


@pytest.fixture(scope="module")
def real() -> ImageDataset:
    dataset = load_dataset("fashion-mnist:train[50000:50200]")
    keep = np.concatenate([np.flatnonzero(dataset.targets == label)[:4] for label in (1, 8)])
    return dataset.subset(keep, name="few real")


@pytest.mark.slow
def test_tuning_moves_the_shipped_generator_and_checks_for_copies(real, tmp_path):
    tuned = tune_and_check(real, tmp_path / "gen", steps=3, batch_size=8, learning_rate=1e-3, check_per_class=3)
    assert tuned.steps == 3 and tuned.images == 8 and tuned.checked == 6
    assert 0 <= tuned.near_copies <= tuned.checked
    saved = json.loads((tmp_path / "gen" / CHECK_FILE).read_text())
    assert TunedGenerator.from_dict(saved) == tuned
    config = json.loads((tmp_path / "gen" / "config.json").read_text())
    assert config["training"]["tuned_from"] == "ddpm-fashion-mnist"
    assert config["training"]["data_fingerprint"] == real.fingerprint()
    # The tuned generator is a ddpm model like any other, and it samples differently.
    request = ImageRequest("Bag", 8, 0, seed=1, prompt="a photo of a Bag")
    (tuned_image,) = make_backend("ddpm", str(tmp_path / "gen")).generate([request])
    (shipped_image,) = make_backend("ddpm").generate([request])
    assert not np.array_equal(np.asarray(tuned_image.image), np.asarray(shipped_image.image))
    assert DiffusionGenerator.load(tmp_path / "gen").classes == DiffusionGenerator.load().classes


def test_tuning_refuses_classes_the_generator_does_not_know(tmp_path):
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    unknown = ImageDataset.from_arrays(images, [0, 1], ["Bag", "Umbrella"], name="odd")
    with pytest.raises(ConfigError, match="Umbrella"):
        tune_and_check(unknown, tmp_path / "gen", steps=1)


@pytest.mark.slow
def test_diffusers_lora_trains_saves_and_loads_into_generation(tiny_diffusers_pipeline, tmp_path):
    pytest.importorskip("peft")
    from synthaug.generate.diffusers_lora import LoraConfig, train_lora

    rng = np.random.default_rng(0)
    real = ImageDataset.from_arrays(rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8), [0, 0, 1, 1],
                                    ["cat", "dog"], name="few")  # fmt: skip
    record = train_lora(real, str(tiny_diffusers_pipeline), tmp_path / "lora",
                        LoraConfig(steps=3, batch_size=2, learning_rate=1e-2, rank=2))  # fmt: skip
    assert (tmp_path / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert record["images_per_class"] == {"cat": 2, "dog": 2} and record["settings"]["rank"] == 2
    request = ImageRequest("cat", 0, 0, seed=4, prompt="a photo of a cat", params={"steps": 2})
    with make_backend("diffusers", str(tiny_diffusers_pipeline)) as plain:
        (without,) = plain.generate([request])
    with make_backend("diffusers", str(tiny_diffusers_pipeline), lora=str(tmp_path / "lora")) as tuned:
        (with_lora,) = tuned.generate([request])
        assert tuned.describe()["lora"]["sha256"]
    assert not np.array_equal(np.asarray(without.image), np.asarray(with_lora.image))
    with pytest.raises(ConfigError, match="no such file"):
        make_backend("diffusers", str(tiny_diffusers_pipeline), lora=str(tmp_path / "missing"))
