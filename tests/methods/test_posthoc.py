"""Post-hoc methods (temperature, laplace) fitted from an already trained base model."""

from __future__ import annotations

import numpy as np
import pytest

from synthaug.errors import ConfigError
from synthaug.methods import METHODS, load_method, make_method
from synthaug.methods.base import PosthocBase

TINY = {"backbone_options": {"image_size": 16, "channels": [8, 16], "hidden": 32}, "epochs": 3,
        "batch_size": 32, "learning_rate": 3e-3, "seed": 3}


@pytest.mark.parametrize(("key", "options"), [("temperature", {"max_iter": 30}), ("laplace", {"num_samples": 5})])
def test_fit_from_a_saved_deterministic_model_equals_fitting_from_scratch(
    make_pattern_dataset, tmp_path, key, options
) -> None:
    train, test = make_pattern_dataset(n_per_class=30, size=16), make_pattern_dataset(n_per_class=8, seed=1, size=16)
    val = make_pattern_dataset(n_per_class=8, seed=2, size=16)
    spec = METHODS.get(key).posthoc_base({**TINY, **options})
    assert spec == PosthocBase("deterministic", TINY)

    retrained = make_method(key, **TINY, **options).fit(train, val)
    base = make_method(spec.key, **spec.params).fit(train, val)
    base.save(tmp_path / "base")  # as the study cache keeps it
    reused = make_method(key, **TINY, **options).fit_from(load_method(tmp_path / "base"), train, val)

    np.testing.assert_array_equal(reused.predict_proba(test), retrained.predict_proba(test))
    if key == "temperature":
        assert reused.temperature_ == retrained.temperature_ != 1.0
    reused.save(tmp_path / "reused")
    np.testing.assert_array_equal(load_method(tmp_path / "reused").predict_proba(test), retrained.predict_proba(test))


def test_fit_from_without_a_validation_set_holds_out_the_same_split(make_pattern_dataset) -> None:
    train, _test = make_pattern_dataset(n_per_class=30, size=16), make_pattern_dataset(n_per_class=8, seed=1, size=16)
    base = make_method("deterministic", **TINY).fit(train)
    reused = make_method("temperature", **TINY).fit_from(base, train)
    assert reused.temperature_ == make_method("temperature", **TINY).fit(train).temperature_


def test_fit_from_refuses_a_base_that_is_not_the_one_it_would_train(make_pattern_dataset) -> None:
    train = make_pattern_dataset(n_per_class=12, size=16)
    base = make_method("deterministic", **{**TINY, "epochs": 1}).fit(train)
    with pytest.raises(ConfigError, match="epochs=1 but this method needs epochs=3"):
        make_method("temperature", **TINY).fit_from(base, train)
    with pytest.raises(ConfigError, match="needs a fitted 'deterministic' model, got 'mc-dropout'"):
        make_method("laplace", **TINY).fit_from(make_method("mc-dropout", **TINY).fit(train), train)
    with pytest.raises(ConfigError, match="call fit"):
        make_method("deterministic", **TINY).fit_from(base, train)


def test_posthoc_base_names_the_base_unit_or_none() -> None:
    assert METHODS.get("deterministic").posthoc_base({"epochs": 3}) is None
    assert METHODS.get("ensemble").posthoc_base({}) is None
    # The temperature's own options are not the base's; base_options are.
    assert METHODS.get("temperature").posthoc_base(
        {"epochs": 4, "base": "mc-dropout", "base_options": {"num_samples": 7}, "max_iter": 20}
    ) == PosthocBase("mc-dropout", {"epochs": 4, "num_samples": 7})
    assert METHODS.get("laplace").posthoc_base({"dropout": 0.1, "hessian_structure": "diag"}) == PosthocBase(
        "deterministic", {"dropout": 0.1}
    )
