"""Temperature scaling (Guo et al. 2017), alone and on top of another method."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synthaug.errors import ConfigError
from synthaug.methods import load_method, make_method
from synthaug.methods.temperature import fit_temperature, mixture_nll, temperature_scale

TINY = {"backbone_options": {"image_size": 16, "channels": [8, 16], "hidden": 32}, "epochs": 6,
        "batch_size": 32, "learning_rate": 3e-3}


def test_scaling_a_sample_equals_dividing_its_logits() -> None:
    logits = torch.randn(1, 5, 4, generator=torch.Generator().manual_seed(0)) * 3
    scaled = temperature_scale(F.log_softmax(logits, -1), 2.5)
    torch.testing.assert_close(scaled, F.log_softmax(logits / 2.5, -1))


@pytest.mark.parametrize("true_temperature", [0.5, 2.0])
def test_recovers_the_temperature_that_generated_the_labels(true_temperature: float) -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(4000, 5, generator=generator) * 3
    # Labels drawn from softmax(logits / T): the model's logits are off by exactly T.
    targets = torch.multinomial(F.softmax(logits / true_temperature, -1), 1, generator=generator).squeeze(1)
    fitted = fit_temperature(F.log_softmax(logits, -1)[None], targets)
    assert fitted == pytest.approx(true_temperature, rel=0.1)
    before = mixture_nll(F.log_softmax(logits, -1)[None], targets)
    after = mixture_nll(temperature_scale(F.log_softmax(logits, -1)[None], fitted), targets)
    assert after < before


def test_temperature_on_top_of_an_ensemble(make_pattern_dataset, tmp_path) -> None:
    train, test = make_pattern_dataset(n_per_class=30, size=16), make_pattern_dataset(n_per_class=10, seed=1, size=16)
    calibrated = make_method("temperature", base="ensemble", base_options={"num_members": 2}, **TINY).fit(train)
    assert calibrated.base_method_.key == "ensemble" and calibrated.base_method_.epochs == 6
    probs = calibrated.predict_proba(test)
    assert probs.shape == (2, 30, 3) and calibrated.temperature_ > 0
    raw = calibrated.base_method_.predict_proba(test)
    # Each member's sample is rescaled by the same T: same per-sample ranking of classes.
    np.testing.assert_array_equal(probs.argmax(-1), raw.argmax(-1))
    calibrated.save(tmp_path / "model")
    loaded = load_method(tmp_path / "model")
    assert loaded.temperature_ == calibrated.temperature_
    np.testing.assert_allclose(loaded.predict_proba(test), probs, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"base": "temperature"}, "another method"), ({"base_options": {"epochs": 3}}, "set epochs on the temperature")],
)
def test_invalid_base_is_config_error(options: dict, message: str, tiny_arrays_dataset) -> None:
    with pytest.raises(ConfigError, match=message):
        make_method("temperature", **options, **TINY).fit(tiny_arrays_dataset)
