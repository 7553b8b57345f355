"""The method base: construction, validation split, fitting checks, saving and loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synthaug.data import concat_datasets
from synthaug.errors import ConfigError, DataError
from synthaug.methods import METHODS, load_method, make_method

TINY = {"backbone_options": {"image_size": 16, "channels": [8, 16], "hidden": 32}, "epochs": 2,
        "batch_size": 32}


def test_registry_lists_the_methods_and_rejects_unknown_names() -> None:
    assert {"deterministic", "temperature", "mc-dropout", "ensemble"} <= set(METHODS.keys())
    with pytest.raises(ConfigError, match="unknown method 'bayes'"):
        make_method("bayes")
    with pytest.raises(ConfigError, match="no hyper-parameter num_members; it accepts: .*learning_rate"):
        make_method("deterministic", num_members=3)


def test_near_misses_get_a_suggestion_instead_of_the_whole_list() -> None:
    with pytest.raises(ConfigError) as error:
        make_method("ensemble", lerning_rate=0.1, num_membrs=3)
    assert str(error.value) == ("method 'ensemble' has no hyper-parameter lerning_rate (did you mean "
                                "'learning_rate'?), num_membrs (did you mean 'num_members'?)")  # fmt: skip
    with pytest.raises(ConfigError, match=r"^unknown method 'mc_dropout' \(did you mean 'mc-dropout'\?\); choose"):
        make_method("mc_dropout")


def test_default_validation_split_and_explicit_validation_set(make_pattern_dataset) -> None:
    train = make_pattern_dataset(n_per_class=20, size=16)
    method = make_method("deterministic", val_fraction=0.25, **TINY).fit(train)
    assert method.history_.best_epoch is not None  # validated on the held-out quarter

    # A validation set whose classes come in another order is matched by name.
    val = make_pattern_dataset(n_per_class=5, seed=2, size=16)
    reordered = val.with_classes(list(reversed(val.classes)))
    a = make_method("deterministic", **TINY).fit(train, val).history_.epochs
    b = make_method("deterministic", **TINY).fit(train, reordered).history_.epochs
    assert [row["val_nll"] for row in a] == [row["val_nll"] for row in b]


def test_sample_weights_of_a_mixed_set_change_training(make_pattern_dataset) -> None:
    real, synthetic = make_pattern_dataset(n_per_class=15, size=16), make_pattern_dataset(15, seed=5, size=16)
    val = make_pattern_dataset(n_per_class=5, seed=2, size=16)
    equal = make_method("deterministic", **TINY).fit(concat_datasets([real, synthetic]), val)
    weighted = make_method("deterministic", **TINY).fit(concat_datasets([real, synthetic], weights=[1.0, 0.2]), val)
    assert equal.history_.epochs[-1]["train_loss"] != weighted.history_.epochs[-1]["train_loss"]


def test_predicting_before_fit_nan_inputs_and_saving_twice(make_pattern_dataset, tmp_path) -> None:
    method = make_method("deterministic", **TINY)
    with pytest.raises(ConfigError, match="not fitted"):
        method.predict_proba(torch.zeros(1, 1, 16, 16))
    method.fit(make_pattern_dataset(n_per_class=10, size=16))
    with pytest.raises(DataError, match="NaN"):
        method.predict_proba(torch.full((2, 1, 16, 16), float("nan")))
    method.save(tmp_path / "model")
    with pytest.raises(ConfigError, match="already holds a saved model"):
        method.save(tmp_path / "model")


def test_saved_config_is_plain_json_without_runtime_settings(make_pattern_dataset, tmp_path) -> None:
    method = make_method("mc-dropout", num_samples=3, device="cpu", **TINY).fit(make_pattern_dataset(10, size=16))
    method.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["method"] == "mc-dropout" and config["classes"] == ["horizontal", "vertical", "diagonal"]
    assert config["hyperparameters"]["num_samples"] == 3
    assert "device" not in config["hyperparameters"] and "progress" not in config["hyperparameters"]
    assert config["backbone"]["name"] == "cnn" and "synthaug_version" in config
    assert len(config["state"]["history"]["epochs"]) == 2
    loaded = load_method(tmp_path / "model")
    assert loaded.history_.epochs == method.history_.epochs


def test_loading_something_else_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not a saved model"):
        load_method(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    (tmp_path / "weights.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match="not a valid synthaug model config"):
        load_method(tmp_path)


def test_repr_shows_changed_hyperparameters() -> None:
    assert repr(make_method("ensemble", num_members=3, seed=2)) == "DeepEnsemble(num_members=3, seed=2)"
    assert np.array_equal(make_method("deterministic").get_params()["seed"], 0)
