"""``laplace``: fit and predict ``(S, N, C)``, posterior quantities saved and loaded exactly."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from synthaug.data import ImageDataset
from synthaug.errors import ConfigError
from synthaug.methods import load_method, make_method
from synthaug.methods.laplace import LastLayerLaplace

TINY_CNN = {"image_size": 16, "channels": [8, 16], "hidden": 32}
FAST = {"backbone_options": TINY_CNN, "epochs": 6, "batch_size": 32, "learning_rate": 3e-3}


@pytest.fixture
def patterns(make_pattern_dataset: Callable[..., ImageDataset]) -> tuple[ImageDataset, ImageDataset]:
    """(train, test): 3 learnable classes, 16x16 images, different seeds."""
    return make_pattern_dataset(n_per_class=40, seed=0, size=16), make_pattern_dataset(n_per_class=10, seed=1, size=16)


@pytest.mark.parametrize(
    "options",
    [
        {"hessian_structure": "kron", "prior_precision_method": "marglik"},
        {"hessian_structure": "diag", "prior_precision_method": "gridsearch"},
        {"hessian_structure": "full", "prior_precision_method": "marglik"},
    ],
    ids=["kron-marglik", "diag-gridsearch", "full-marglik"],
)
def test_fits_predicts_samples_and_round_trips_without_pickle(options: dict[str, Any], patterns, tmp_path) -> None:
    train, test = patterns
    method = make_method("laplace", **FAST, num_samples=25, seed=0, **options).fit(train)
    probs = method.predict_proba(test)
    assert probs.shape == (25, len(test), 3)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert (probs.mean(0).argmax(1) == test.targets).mean() >= 0.8
    assert not np.allclose(probs[0], probs[1]), "the GLM predictive samples must differ"
    # The samples are spread around the MAP network's prediction.
    map_probs = torch.softmax(method.model_.eval()(method.backbone_.prepare(test)), -1).detach().numpy()
    assert (probs.mean(0).argmax(1) == map_probs.argmax(1)).mean() >= 0.9

    method.save(tmp_path / "model")
    assert sorted(path.name for path in (tmp_path / "model").iterdir()) == ["config.json", "weights.safetensors"]
    assert "laplace" in json.loads((tmp_path / "model" / "config.json").read_text())["state"]
    loaded = load_method(tmp_path / "model")
    assert isinstance(loaded, LastLayerLaplace)
    # The posterior itself came back, not a refit: same prior precision, mean and curvature.
    torch.testing.assert_close(loaded.laplace_.prior_precision, method.laplace_.prior_precision)
    # (and it was tuned: laplace-torch starts from a prior precision of 1)
    assert method.laplace_.prior_precision.item() != pytest.approx(1.0, rel=1e-3)
    torch.testing.assert_close(loaded.laplace_.mean, method.laplace_.mean)
    assert loaded.laplace_.n_data == method.laplace_.n_data == len(train) - round(0.1 * len(train))
    np.testing.assert_array_equal(loaded.predict_proba(test), probs)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hessian_structure": "lowrank"}, "hessian_structure"),
        ({"prior_precision_method": "cv"}, "prior_precision_method"),
        ({"num_samples": 0}, "num_samples"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], message: str, patterns) -> None:
    train, _ = patterns
    with pytest.raises(ConfigError, match=message):
        make_method("laplace", **FAST, **options).fit(train)
