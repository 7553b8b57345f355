"""``bnn``: ELBO scaling, learning a tiny task, sample diversity, options and bad settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from synthaug.data import ImageDataset
from synthaug.errors import ConfigError
from synthaug.methods import make_method
from synthaug.methods.bnn import BayesByBackprop, ScaledKL
from synthaug.models.bayesian import bayesian_layers_of, convert_to_bayesian, kl_divergence

TINY_CNN = {"image_size": 16, "channels": [8, 16], "hidden": 32}
FAST = {"backbone_options": TINY_CNN, "epochs": 6, "batch_size": 32, "learning_rate": 3e-3}


@pytest.fixture
def patterns(make_pattern_dataset: Callable[..., ImageDataset]) -> tuple[ImageDataset, ImageDataset]:
    """(train, test): 3 learnable classes, 16x16 images, different seeds."""
    return make_pattern_dataset(n_per_class=40, seed=0, size=16), make_pattern_dataset(n_per_class=10, seed=1, size=16)


def _network() -> nn.Module:
    torch.manual_seed(0)
    return convert_to_bayesian(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))


def test_scaled_kl_is_the_kl_divided_by_the_training_set_size() -> None:
    network = _network()
    scaled_kl = ScaledKL()
    value = scaled_kl(network, 500)
    assert value.item() == pytest.approx(kl_divergence(network).item() / 500, rel=1e-6)
    # Summed over the N / B steps of an epoch, the minibatch KL terms give KL / B: the
    # negative ELBO (sum of NLL + KL) divided by the batch size, like the mean-NLL part.
    n_train, batch_size = 500, 50
    epoch_total = sum(scaled_kl(network, n_train).item() for _ in range(n_train // batch_size))
    assert epoch_total == pytest.approx(kl_divergence(network).item() / batch_size, rel=1e-5)


def test_kl_annealing_rises_linearly_to_one_then_stays() -> None:
    network = _network()
    scaled_kl = ScaledKL(annealing_examples=100, batch_size=25)
    full = kl_divergence(network).item() / 10
    values = [scaled_kl(network, 10).item() for _ in range(6)]
    np.testing.assert_allclose(values, np.array([0.25, 0.5, 0.75, 1.0, 1.0, 1.0]) * full, rtol=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"estimator": "lrt", "bayesian_layers": "all", "bias_posterior_init_std": None},
        {"estimator": "flipout", "bayesian_layers": "all", "bias_posterior_init_std": None},
        {"estimator": "flipout", "bayesian_layers": "last", "init_from_deterministic": True, "pretrain_epochs": 2},
    ],
    ids=["default", "lrt-all", "flipout-all", "flipout-last-pretrained"],
)
def test_learns_a_tiny_task_and_its_samples_differ(options: dict[str, Any], patterns) -> None:
    train, test = patterns
    method = make_method("bnn", **FAST, num_samples=20, seed=0, **options).fit(train)
    probs = method.predict_proba(test)
    assert probs.shape == (20, len(test), 3)
    accuracy = (probs.mean(0).argmax(1) == test.targets).mean()
    assert accuracy >= 0.8, f"accuracy {accuracy:.2f} on a learnable 3-class task (chance 0.33)"
    # Different weight samples give different predictions. The posterior starts narrow (1 %
    # of the weight spread) and widens slowly, so after a few steps the spread is small.
    assert probs.std(axis=0).mean() > 1e-5
    assert not np.allclose(probs[0], probs[1])
    layers = bayesian_layers_of(method.model_)
    assert len(layers) == (4 if options.get("bayesian_layers") == "all" else 1)


def _mean_rho_per_layer(method: BayesByBackprop) -> np.ndarray:
    return np.array([layer.weight_rho.mean().item() for layer in bayesian_layers_of(method.model_)])


@pytest.mark.slow
def test_the_kl_term_widens_the_posterior_and_annealing_delays_it(patterns) -> None:
    train, _ = patterns
    options = {**FAST, "seed": 0, "bayesian_layers": "all"}
    full_elbo = make_method("bnn", **options).fit(train)
    # Annealed over 10,000 epochs, the KL weight stays below 1e-3 for these 6 epochs.
    almost_no_kl = make_method("bnn", **options, kl_annealing_epochs=10_000).fit(train)
    # The KL pushes every posterior std up towards the prior's; the likelihood alone does
    # not. (Adam moves rho by at most ~learning_rate per step, hence the small margin.)
    difference = _mean_rho_per_layer(full_elbo) - _mean_rho_per_layer(almost_no_kl)
    assert (difference > 0).all() and difference.mean() > 0.01


def test_init_from_deterministic_starts_from_the_pretrained_network(patterns) -> None:
    train, _ = patterns
    options = {**FAST, "epochs": 1, "seed": 0, "bayesian_layers": "all"}
    from_scratch = make_method("bnn", **options).fit(train)
    pretrained = make_method("bnn", **options, init_from_deterministic=True, pretrain_epochs=5).fit(train)
    # After one variational epoch (4 steps), the network that started at the pre-trained
    # weights is far ahead of the one that started from a random initialisation.
    assert pretrained.history_.epochs[0]["val_accuracy"] >= 0.9
    assert pretrained.history_.epochs[0]["val_nll"] < 0.5 * from_scratch.history_.epochs[0]["val_nll"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"estimator": "bayes"}, "estimator"),
        ({"weight_decay": 1e-4}, "weight_decay"),
        ({"num_samples": 0}, "num_samples"),
        ({"bayesian_layers": 9}, "bayesian_layers"),
        ({"kl_annealing_epochs": -1}, "kl_annealing_epochs"),
        ({"bias_posterior_init_std": 0.0}, "bias_posterior_init_std"),
        ({"test_time_dropout": True, "dropout": 0.0}, "test_time_dropout"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], message: str, patterns) -> None:
    train, _ = patterns
    with pytest.raises(ConfigError, match=message):
        make_method("bnn", **FAST, **options).fit(train)


def test_registered_under_bnn() -> None:
    assert isinstance(make_method("bnn"), BayesByBackprop)


def _mutual_information(probs: np.ndarray) -> np.ndarray:
    mean = probs.mean(0)
    entropy = -(mean * np.log(mean + 1e-12)).sum(-1)
    return entropy - (-(probs * np.log(probs + 1e-12)).sum(-1)).mean(0)


@pytest.mark.slow
def test_the_default_bnn_is_more_uncertain_about_its_weights_off_the_data(patterns) -> None:
    """The default (last-layer posterior with a Bayesian bias) gives mutual information that
    ranks off-distribution images above test images. The old default (every layer, bias as
    narrow as the weights) gives almost none, and *less* off the data: its noise is
    multiplicative, so it shrinks with the features of dim images (docs/methods.md)."""
    train, test = patterns
    rng = np.random.default_rng(0)
    # Off-distribution: dim, structureless images (small features, as digits are for a
    # Fashion-MNIST network).
    off = ImageDataset.from_arrays(
        rng.integers(0, 60, size=(30, 16, 16), dtype=np.uint8), np.zeros(30, int), train.classes
    )
    default = make_method("bnn", **FAST, num_samples=50, seed=0).fit(train)
    old = make_method("bnn", **FAST, num_samples=50, seed=0, bayesian_layers="all", bias_posterior_init_std=None,
                      dropout=0.0).fit(train)
    information = {name: (_mutual_information(m.predict_proba(test)), _mutual_information(m.predict_proba(off)))
                   for name, m in [("default", default), ("old", old)]}
    auroc = {name: (away[:, None] > on[None, :]).mean() for name, (on, away) in information.items()}
    assert auroc["default"] >= 0.8, f"mutual information AUROC {auroc['default']:.2f}"
    assert auroc["old"] < 0.5, f"mutual information AUROC {auroc['old']:.2f}"
    assert information["default"][0].mean() > 100 * information["old"][0].mean()
    # The default is the deterministic network (the backbone's dropout included) with a
    # Bayesian output layer; dropout is off at prediction, so the spread is the posterior's.
    assert [m.p for m in default.model_.modules() if isinstance(m, nn.Dropout)] == [0.3, 0.3]


@pytest.mark.slow
def test_test_time_dropout_also_samples_the_features(patterns) -> None:
    """With ``test_time_dropout`` the dropout layers before the Bayesian output layer draw a
    new mask on every pass: the samples spread more than the posterior's alone and the mean
    prediction stays close."""
    train, test = patterns
    plain = make_method("bnn", **FAST, num_samples=20, seed=0).fit(train)
    sampled = make_method("bnn", **FAST, num_samples=20, seed=0, test_time_dropout=True).fit(train)
    # Same training: the option only changes prediction.
    for (name, a), b in zip(plain.model_.state_dict().items(), sampled.model_.state_dict().values()):
        assert torch.equal(a, b), name
    p_plain, p_sampled = plain.predict_proba(test), sampled.predict_proba(test)
    assert _mutual_information(p_sampled).mean() > 1.5 * _mutual_information(p_plain).mean()
    assert np.abs(p_sampled.mean(0) - p_plain.mean(0)).max() < 0.3
