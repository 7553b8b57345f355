"""The ``diffusers`` backend on a tiny random Stable Diffusion pipeline saved to disk."""

from __future__ import annotations

import numpy as np
import pytest

from synthaug.errors import ConfigError
from synthaug.generate.backends import ImageRequest, make_backend

pytest.importorskip("diffusers")


def request(seed: int, prompt: str = "a photo of a cat", index: int = 0, **params) -> ImageRequest:
    return ImageRequest("cat", 0, index, seed=seed, prompt=prompt, params={"steps": 2, **params})


def pixels(results) -> dict[str, np.ndarray]:
    return {result.request.key: np.asarray(result.image, dtype=np.int16) for result in results}


@pytest.mark.slow
def test_loads_the_saved_pipeline_and_makes_seeded_images(tiny_diffusers_pipeline):
    with make_backend("diffusers", str(tiny_diffusers_pipeline), batch_size=2) as backend:
        first = list(backend.generate([request(1, index=0), request(2, index=1), request(3, index=2)]))
        again = list(backend.generate([request(1, index=0), request(2, index=1), request(3, index=2)]))
        description = backend.describe()
    assert type(backend.pipeline).__name__ == "StableDiffusionPipeline"
    assert description["pipeline"] == "StableDiffusionPipeline" and description["dtype"] == "float32"
    assert [r.image.size for r in first] == [(16, 16)] * 3 and first[0].image.mode == "RGB"
    assert first[0].extra["pipeline"] == "StableDiffusionPipeline"
    a, b = pixels(first), pixels(again)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["cat/000000"], a["cat/000001"])


def test_an_image_does_not_depend_on_its_batch(tiny_diffusers_pipeline):
    with make_backend("diffusers", str(tiny_diffusers_pipeline), batch_size=3) as backend:
        batched = pixels(backend.generate([request(7, index=0), request(8, index=1), request(9, index=2)]))
        (alone,) = pixels(backend.generate([request(8, index=1)])).values()
    # The starting latent comes from the image's own generator; only float rounding may differ.
    assert np.abs(batched["cat/000001"] - alone).max() <= 1


def test_parameters_reach_the_pipeline(tiny_diffusers_pipeline):
    with make_backend("diffusers", str(tiny_diffusers_pipeline)) as backend:
        (plain,) = pixels(backend.generate([request(5)])).values()
        (negative,) = pixels(backend.generate([request(5, negative_prompt="a dog")])).values()
        (unguided,) = pixels(backend.generate([request(5, guidance_scale=1.0)])).values()
        (wide,) = backend.generate([request(5, size="24x16")])
    assert not np.array_equal(plain, negative) and not np.array_equal(plain, unguided)
    assert wide.image.size == (24, 16)


def test_bad_options_parameters_and_models_are_config_errors(tiny_diffusers_pipeline, tmp_path):
    with pytest.raises(ConfigError, match="scheduler"):
        make_backend("diffusers", str(tiny_diffusers_pipeline), scheduler="euler")
    with pytest.raises(ConfigError, match="dtype"):
        make_backend("diffusers", str(tiny_diffusers_pipeline), dtype="float8")
    backend = make_backend("diffusers", str(tiny_diffusers_pipeline))
    with pytest.raises(ConfigError, match="quality"):
        backend.validate({"quality": "hd"})
    with pytest.raises(ConfigError, match="divisible by 8"):
        backend.validate({"size": "20x16"})
    with pytest.raises(ConfigError, match="steps"):
        backend.validate({"steps": 0})
    missing = make_backend("diffusers", str(tmp_path / "no-such-pipeline"))
    with pytest.raises(ConfigError, match="cannot load diffusers model"):
        list(missing.generate([request(1)]))


def test_a_model_that_cannot_be_had_stops_before_the_folder_is_made(tiny_diffusers_pipeline, tmp_path, monkeypatch):
    """Offline (HF_HUB_OFFLINE: no request leaves the machine) with a hub id in no cache, the
    model is one line, and so is a folder that is not a saved pipeline; nothing is written."""
    from synthaug.generate import generate_dataset

    # huggingface_hub reads HF_HUB_OFFLINE when imported; its constant is the switch after that.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    make_backend("diffusers", str(tiny_diffusers_pipeline)).check_ready()  # a saved pipeline is ready
    not_a_pipeline = tmp_path / "empty"
    not_a_pipeline.mkdir()
    for model, expected in [
        ("someone/no-such-pipeline", r"cannot find diffusers model 'someone/no-such-pipeline' \(LocalEntryNotFound"),
        (str(not_a_pipeline), "no model_index.json"),
    ]:
        out = tmp_path / "out"
        with pytest.raises(ConfigError, match=expected):
            generate_dataset(out, ["cat"], per_class=1, backend="diffusers", model=model)
        assert not out.exists()
