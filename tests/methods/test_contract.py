"""Every registered uncertainty method goes through the same checks (sklearn-style contract)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from synthaug.data import ImageDataset
from synthaug.errors import TrainingError
from synthaug.methods import METHODS, UncertaintyMethod, load_method, make_method

# A CNN small enough that every method fits the 16x16 pattern images in about a second.
TINY_CNN = {"image_size": 16, "channels": [8, 16], "hidden": 32}
COMMON = {"backbone_options": TINY_CNN, "epochs": 6, "batch_size": 32, "learning_rate": 3e-3}
# Method-specific settings that keep the check fast (a method not listed uses its defaults).
FAST_OPTIONS: dict[str, dict[str, Any]] = {
    "ensemble": {"num_members": 2},
    "mc-dropout": {"num_samples": 4},
    "temperature": {"max_iter": 20},
}


def make(key: str, **overrides: Any) -> UncertaintyMethod:
    return make_method(key, **{**COMMON, **FAST_OPTIONS.get(key, {}), **overrides})


@pytest.fixture
def patterns(make_pattern_dataset: Callable[..., ImageDataset]) -> tuple[ImageDataset, ImageDataset]:
    """(train, test): 3 learnable classes, 16x16 images, different seeds."""
    return make_pattern_dataset(n_per_class=40, seed=0, size=16), make_pattern_dataset(n_per_class=10, seed=1, size=16)


@pytest.mark.parametrize("key", METHODS.keys())
def test_fit_predict_save_load(key: str, patterns, tmp_path) -> None:
    train, test = patterns
    method = make(key, seed=0)
    assert method.fit(train) is method
    assert method.classes_ == train.classes

    probs = method.predict_proba(test)
    assert probs.dtype == np.float32
    assert probs.ndim == 3 and probs.shape[1:] == (len(test), len(train.classes))
    assert (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    accuracy = (probs.mean(0).argmax(1) == test.targets).mean()
    assert accuracy >= 0.8, f"{key}: accuracy {accuracy:.2f} on a learnable 3-class task (chance 0.33)"

    # Inputs already prepared by the backbone give the same predictions as the images.
    np.testing.assert_array_equal(method.predict_proba(method.backbone_.prepare(test)), probs)

    method.save(tmp_path / "model")
    loaded = load_method(tmp_path / "model")
    assert type(loaded) is type(method)
    assert loaded.classes_ == method.classes_
    np.testing.assert_allclose(loaded.predict_proba(test), probs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("key", METHODS.keys())
def test_same_seed_same_numbers(key: str, patterns) -> None:
    train, test = patterns
    first = make(key, seed=3, epochs=2).fit(train).predict_proba(test)
    second = make(key, seed=3, epochs=2).fit(train).predict_proba(test)
    np.testing.assert_array_equal(first, second)
    other_seed = make(key, seed=4, epochs=2).fit(train).predict_proba(test)
    assert not np.array_equal(first, other_seed)


@pytest.mark.parametrize("key", METHODS.keys())
def test_diverging_loss_raises_training_error(key: str, patterns) -> None:
    train, _ = patterns
    with pytest.raises(TrainingError, match="lower the learning rate"):
        make(key, learning_rate=1e30, epochs=3).fit(train)


@pytest.mark.parametrize("key", METHODS.keys())
def test_init_only_stores_hyperparameters(key: str) -> None:
    method = make(key, seed=7)
    params = method.get_params()
    assert params["seed"] == 7 and params["backbone_options"] == TINY_CNN
    assert make_method(key, **params).get_params() == params
    assert not [name for name in vars(method) if name.endswith("_")], "learned state before fit"


POLICIES = ["none", "flip-crop", "randaugment", "trivialaugment", "autoaugment", "augmix", "mixup", "cutmix"]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("key", METHODS.keys())
def test_every_method_trains_with_every_augmentation_policy(key: str, policy: str, patterns, tmp_path) -> None:
    train, test = patterns
    method = make(key, seed=0, epochs=1, augment=policy, backbone_options={**TINY_CNN, "grayscale": False})
    method.fit(train.subset(range(60)))
    probs = method.predict_proba(test)
    assert probs.shape[1:] == (len(test), 3) and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert all(len(history.epochs) == 1 for history in method.training_histories())
    method.save(tmp_path / "model")
    assert load_method(tmp_path / "model").get_params()["augment"] == policy
