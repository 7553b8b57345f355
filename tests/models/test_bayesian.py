"""Mean-field Gaussian layers: shapes, closed-form KL, and the two estimators' statistics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from synthaug.errors import ConfigError
from synthaug.models.bayesian import (
    BayesianConv2d,
    BayesianLinear,
    bayesian_layers_of,
    convert_to_bayesian,
    kl_divergence,
)


def _set_sigma(layer: BayesianLinear | BayesianConv2d, sigma: torch.Tensor | float) -> None:
    """Give ``layer`` the posterior standard deviation ``sigma`` (through rho = softplus^-1)."""
    with torch.no_grad():
        target = torch.as_tensor(sigma, dtype=torch.float32).expand_as(layer.weight_rho)
        layer.weight_rho.copy_(torch.log(torch.expm1(target)))
        if layer.bias_rho is not None:
            layer.bias_rho.copy_(torch.log(torch.expm1(torch.full_like(layer.bias_rho, 0.2))))


@pytest.mark.parametrize("estimator", ["lrt", "flipout"])
def test_layers_keep_the_shapes_of_their_deterministic_counterparts(estimator: str) -> None:
    torch.manual_seed(0)
    linear = BayesianLinear(5, 3, estimator=estimator)
    conv = BayesianConv2d(2, 4, 3, stride=2, padding=1, estimator=estimator)
    assert linear(torch.randn(7, 5)).shape == (7, 3)
    assert conv(torch.randn(7, 2, 9, 9)).shape == nn.Conv2d(2, 4, 3, 2, 1)(torch.randn(7, 2, 9, 9)).shape


def test_kl_of_a_one_weight_layer_matches_the_hand_computed_value() -> None:
    layer = BayesianLinear(1, 1, bias=False, prior_sigma=1.0, weight=torch.tensor([[0.5]]))
    _set_sigma(layer, 0.2)
    # KL(N(0.5, 0.2^2) || N(0, 1)) = log(1 / 0.2) + (0.2^2 + 0.5^2) / 2 - 1/2
    expected = math.log(5.0) + (0.04 + 0.25) / 2 - 0.5
    assert layer.kl_divergence().item() == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(1.2544379, abs=1e-6)


def test_kl_is_zero_when_the_posterior_equals_the_prior() -> None:
    layer = BayesianConv2d(2, 3, 3, prior_sigma=0.3, weight=torch.zeros(3, 2, 3, 3), bias_init=torch.zeros(3))
    with torch.no_grad():
        layer.weight_rho.fill_(math.log(math.expm1(0.3)))
        layer.bias_rho.fill_(math.log(math.expm1(0.3)))
    assert layer.kl_divergence().item() == pytest.approx(0.0, abs=1e-5)


def _direct_weight_samples(layer: BayesianLinear | BayesianConv2d, inputs: torch.Tensor, count: int) -> torch.Tensor:
    """Outputs for ``count`` independent weight samples drawn explicitly from the posterior."""
    generator = torch.Generator().manual_seed(1)
    outputs = []
    with torch.no_grad():
        for _ in range(count):
            weight = layer.weight_mu + layer.weight_sigma * torch.randn(layer.weight_mu.shape, generator=generator)
            bias = layer.bias_mu + layer.bias_sigma * torch.randn(layer.bias_mu.shape, generator=generator)
            if isinstance(layer, BayesianLinear):
                outputs.append(F.linear(inputs, weight, bias))
            else:
                outputs.append(F.conv2d(inputs, weight, bias, layer.stride, layer.padding))
    return torch.cat(outputs)


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["lrt", "flipout"])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_estimators_match_direct_weight_sampling_in_mean_and_variance(estimator: str, kind: str) -> None:
    torch.manual_seed(0)
    if kind == "linear":
        layer: BayesianLinear | BayesianConv2d = BayesianLinear(4, 3, estimator=estimator)
        single_input = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    else:
        layer = BayesianConv2d(2, 3, 3, padding=1, estimator=estimator)
        single_input = torch.randn(1, 2, 4, 4)
    sigmas = torch.linspace(0.05, 0.6, layer.weight_rho.numel()).reshape(layer.weight_rho.shape)
    _set_sigma(layer, sigmas)
    draws, batch = 3000, 4  # Flipout shares one perturbation per call: many calls, small batches
    with torch.no_grad():
        sampled = torch.cat([layer(single_input.expand(batch, *single_input.shape[1:])) for _ in range(draws)])
    direct = _direct_weight_samples(layer, single_input, draws * batch)

    direct_std = direct.std(dim=0)
    # Means agree within a few standard errors, variances within ~8 % (the standard error of
    # a variance from a few thousand effective samples is ~3 %).
    assert torch.all((sampled.mean(dim=0) - direct.mean(dim=0)).abs() < 5 * direct_std / math.sqrt(draws))
    torch.testing.assert_close(sampled.var(dim=0), direct.var(dim=0), rtol=0.08, atol=1e-6)
    # And the noise is really there: the outputs differ between calls.
    assert direct_std.min() > 0.05


@pytest.mark.parametrize("estimator", ["lrt", "flipout"])
def test_prediction_shares_one_exact_weight_sample_per_batch(estimator: str) -> None:
    torch.manual_seed(0)
    layer = BayesianConv2d(2, 3, 3, padding=1, estimator=estimator)
    _set_sigma(layer, torch.full(layer.weight_rho.shape, 0.3))
    single_input = torch.randn(1, 2, 4, 4)
    batch = single_input.expand(8, *single_input.shape[1:])
    with torch.no_grad():
        training_outputs = layer(batch)
        layer.eval()
        predictions = torch.cat([layer(batch)[:1] for _ in range(3000)])
        shared = layer(batch)
    # In training, LRT samples each example's pre-activations and Flipout flips signs per
    # example, so equal inputs get different outputs; at prediction one weight sample serves
    # the batch, so they get equal outputs, and a new call draws a new sample.
    assert not torch.allclose(training_outputs[0], training_outputs[1])
    torch.testing.assert_close(shared[0].expand_as(shared), shared)
    assert not torch.allclose(predictions[0], predictions[1])
    # Each prediction is an exact posterior sample: its moments are direct weight sampling's.
    direct = _direct_weight_samples(layer, single_input, 3000)
    assert torch.all((predictions.mean(dim=0) - direct.mean(dim=0)).abs() < 5 * direct.std(dim=0) / math.sqrt(3000))
    torch.testing.assert_close(predictions.var(dim=0), direct.var(dim=0), rtol=0.1, atol=1e-6)


@pytest.mark.parametrize("estimator", ["lrt", "flipout"])
def test_gradients_reach_means_and_standard_deviations(estimator: str) -> None:
    torch.manual_seed(0)
    layer = BayesianConv2d(1, 2, 3, bias=False, estimator=estimator)
    # An all-zero input gives an LRT variance of exactly 0 without bias: must not turn into NaN.
    inputs = torch.cat([torch.zeros(1, 1, 5, 5), torch.randn(3, 1, 5, 5)])
    (layer(inputs).square().sum() + layer.kl_divergence()).backward()
    assert torch.isfinite(layer.weight_mu.grad).all() and layer.weight_mu.grad.abs().sum() > 0
    assert torch.isfinite(layer.weight_rho.grad).all() and layer.weight_rho.grad.abs().sum() > 0


def _small_network() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Sequential(nn.Linear(4 * 6 * 6, 8), nn.ReLU()),
        nn.Linear(8, 3),
    )


def test_convert_all_layers_starts_the_means_at_the_weights_and_leaves_the_input_model_alone() -> None:
    torch.manual_seed(0)
    network = _small_network()
    converted = convert_to_bayesian(network, bayesian_layers="all", posterior_init_std=1e-2)
    layers = bayesian_layers_of(converted)
    assert [type(layer) for layer in layers] == [BayesianConv2d, BayesianLinear, BayesianLinear]
    torch.testing.assert_close(converted[0].weight_mu, network[0].weight)
    torch.testing.assert_close(converted[4][0].weight_mu, network[4][0].weight)
    assert isinstance(network[0], nn.Conv2d)  # the input model is untouched
    # The initial posterior std is 1 % of each layer's weight std.
    torch.testing.assert_close(converted[-1].weight_sigma.mean(), 1e-2 * network[-1].weight.std(), rtol=1e-3, atol=0)
    # With a small initial std the converted network computes nearly the same function.
    inputs = torch.randn(5, 1, 6, 6)
    network.eval(), converted.eval()
    torch.testing.assert_close(converted(inputs), network(inputs), rtol=0.05, atol=0.05)


@pytest.mark.parametrize(("bayesian_layers", "expected"), [("last", 1), (2, 2), ("all", 3)])
def test_convert_only_the_last_layers(bayesian_layers: str | int, expected: int) -> None:
    converted = convert_to_bayesian(_small_network(), bayesian_layers=bayesian_layers)
    layers = bayesian_layers_of(converted)
    assert len(layers) == expected
    assert layers[-1] is converted[-1]
    expected_kl = sum(layer.kl_divergence().item() for layer in layers)
    assert kl_divergence(converted).item() == pytest.approx(expected_kl, rel=1e-5)


@pytest.mark.parametrize("bayesian_layers", [0, 4, "first", True])
def test_convert_rejects_an_impossible_layer_choice(bayesian_layers: object) -> None:
    with pytest.raises(ConfigError, match="bayesian_layers"):
        convert_to_bayesian(_small_network(), bayesian_layers=bayesian_layers)  # type: ignore[arg-type]


def test_bad_estimator_and_prior_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="estimator"):
        BayesianLinear(2, 2, estimator="reinforce")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="prior_sigma"):
        BayesianLinear(2, 2, prior_sigma=0.0)
    with pytest.raises(ConfigError, match="no Bayesian layer"):
        kl_divergence(nn.Linear(2, 2))


def test_bias_posterior_std_is_absolute_when_given_and_follows_the_weights_otherwise() -> None:
    torch.manual_seed(0)
    network = _small_network()
    relative = convert_to_bayesian(network, bayesian_layers="last", posterior_init_std=1e-2)
    absolute = convert_to_bayesian(network, bayesian_layers="last", bias_posterior_init_std=0.5)
    torch.testing.assert_close(relative[-1].bias_sigma, torch.full((3,), 1e-2 * network[-1].weight.std().item()))
    torch.testing.assert_close(absolute[-1].bias_sigma, torch.full((3,), 0.5))
    # The weights keep their narrow relative start either way.
    torch.testing.assert_close(absolute[-1].weight_sigma, relative[-1].weight_sigma)


def test_a_bayesian_bias_adds_the_same_logit_variance_to_every_input() -> None:
    """Weight noise scales with the input (variance x^2 sigma^2); bias noise does not, so a
    small-feature input (as OOD images are for a Fashion-MNIST network) keeps its share."""
    layer = BayesianLinear(4, 2, posterior_init_std=1e-6, bias_posterior_init_std=0.5).eval()
    small, large = torch.full((1, 4), 0.01), torch.full((1, 4), 10.0)
    with torch.no_grad():
        small_std = torch.stack([layer(small) for _ in range(4000)]).std(0)
        large_std = torch.stack([layer(large) for _ in range(4000)]).std(0)
    torch.testing.assert_close(small_std, torch.full_like(small_std, 0.5), rtol=0.06, atol=0)
    torch.testing.assert_close(large_std, small_std, rtol=0.08, atol=0)
