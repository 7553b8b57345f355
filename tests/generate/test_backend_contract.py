"""One contract every registered generator backend passes (cases come from conftest.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from synthaug.data import load_dataset
from synthaug.errors import ConfigError
from synthaug.generate import generate_dataset
from synthaug.generate.backends import PARAM_NAMES, GeneratedImage, ImageRequest, make_backend, parse_size
from synthaug.generate.engine import derive_seed


def _requests(case, seeds: list[int]) -> list[ImageRequest]:
    return [
        ImageRequest(
            label=case.classes[i % len(case.classes)],
            class_index=i % len(case.classes),
            index=i,
            seed=seed,
            prompt=f"a photo of a {case.classes[i % len(case.classes)]}",
            params=case.params,
        )
        for i, seed in enumerate(seeds)
    ]


def test_one_image_of_the_requested_size_per_request_and_seeded_when_local(backend_factory):
    _, case = backend_factory
    requests = _requests(case, [derive_seed(0, "x", i, 0) for i in range(3)])
    with case.make() as backend:  # one backend (one model load) for the whole test
        results = list(backend.generate(requests))
        assert sorted(r.request.key for r in results) == sorted(r.key for r in requests)
        assert all(isinstance(r, GeneratedImage) and isinstance(r.image, Image.Image) for r in results)
        assert {r.image.size for r in results} == {parse_size(case.params["size"])}
        assert all(r.cost_usd >= 0 for r in results)
        if not case.deterministic:
            return  # a remote provider takes no seed
        # Same seed, same image, whatever the batch it is part of; another seed, another image.
        again = {r.request.key: np.asarray(r.image) for r in backend.generate(requests[::-1])}
        (other,) = backend.generate(_requests(case, [99]))
    for result in results:
        np.testing.assert_array_equal(np.asarray(result.image), again[result.request.key])
    first = next(r for r in results if r.request.key == other.request.key)
    assert not np.array_equal(np.asarray(other.image), np.asarray(first.image))


def test_unsupported_parameters_and_options_are_config_errors(backend_factory):
    key, case = backend_factory
    with case.make() as backend:
        backend.validate(case.params)
        with pytest.raises(ConfigError, match="no_such_parameter"):
            backend.validate({**case.params, "no_such_parameter": 1})
        unsupported = sorted(set(PARAM_NAMES) - backend.supported_params)
        if unsupported:
            with pytest.raises(ConfigError, match=unsupported[0]):
                backend.validate({**case.params, unsupported[0]: "x"})
        description = backend.describe()
    assert description["backend"] == key and "model" in description
    json.dumps(description)  # provenance must be writable to generation.json
    with pytest.raises(ConfigError, match="no_such_option"):
        make_backend(key, no_such_option=1)


def test_engine_output_loads_with_synthaug(backend_factory, tmp_path):
    _, case = backend_factory
    with case.make() as backend:
        summary = generate_dataset(tmp_path / "out", case.classes, 2, backend=backend, params=case.params)
    assert summary["missing"] == {} and summary["generated"] == 2 * len(case.classes)
    dataset = load_dataset(tmp_path / "out")
    assert sorted(dataset.classes) == sorted(case.classes)
    assert np.bincount(dataset.targets).tolist() == [2] * len(case.classes)
