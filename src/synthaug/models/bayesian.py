"""Mean-field Gaussian variational layers and the conversion of a network into a BNN.

Every weight ``w`` of a :class:`BayesianLinear` or :class:`BayesianConv2d` has its own
Gaussian posterior ``q(w) = N(mu, sigma^2)`` with ``sigma = softplus(rho)``; the prior is
``p(w) = N(0, prior_sigma^2)`` for every weight and bias. The Kullback-Leibler divergence
``KL(q || p)`` is computed in closed form (no Monte Carlo noise in the regulariser).

Each forward pass draws one weight sample per call with one of two low-variance
estimators, chosen by ``estimator``:

- ``"lrt"``, the local reparameterization trick (Kingma, Salimans & Welling 2015): instead
  of sampling weights, sample the pre-activations, whose distribution given the input is
  Gaussian with mean ``x @ mu`` and variance ``x^2 @ sigma^2``. The noise is then
  independent per example, which removes the gradient variance that comes from all
  examples of a minibatch sharing one weight sample. For a :class:`torch.nn.Linear` the
  per-example marginal is exact. For a convolution the output positions of one channel
  share the kernel, which the trick ignores (each position gets independent noise), so
  there it is an approximation (the one Molchanov et al. 2017 use).
- ``"flipout"`` (Wen et al. 2018): draw one weight perturbation ``dW = sigma * eps`` per
  call, and decorrelate it across examples by multiplying input and output by random
  signs per example: ``y = f(x, mu) + s_out * f(x * s_in, dW)``. Each example sees an
  exact sample of the weight posterior (also for convolutions), and pseudo-independent
  perturbations across the minibatch again reduce the gradient variance.

Both estimators cost about two ordinary forward/backward passes of the layer.

:func:`convert_to_bayesian` turns the :class:`torch.nn.Linear` / :class:`torch.nn.Conv2d`
layers of any deterministic module (all of them or only the last ``k``) into these layers,
starting the posterior means at the module's current weights (so a trained network gives
the initialisation of Krishnan et al. 2020), and :func:`kl_divergence` sums the KL of a
model's Bayesian layers for the ELBO.

Why the posterior starts with a *small* standard deviation: at initialisation the
variational noise should not drown the signal. If every weight starts with a standard
deviation comparable to its mean, the pre-activations of a deep network are mostly noise,
the expected log-likelihood gradient is tiny and noisy, the KL term (which pulls means to
0) wins, and the network collapses to predicting the prior — the classic failure mode of
Bayes by Backprop and a likely cause of the 19.56 % accuracy in the study synthaug
reproduces. Starting at ``sigma = posterior_init_std * std(mu)`` per layer (default 1 %)
lets the network first fit the data like a deterministic one, and the KL term then grows
each variance only where the likelihood does not need precision (Blundell et al. 2015 start
at ``rho = -5``, ``sigma ~ 7e-3``, for the same reason).

The bias may start wider, at an absolute ``bias_posterior_init_std``: weight noise adds
``sum_j sigma_j^2 x_j^2`` to the variance of a pre-activation, which vanishes with the input,
while bias noise adds the same ``s^2`` to every input. On the output layer that is what lets
mutual information rank inputs the network maps to small features (often out-of-distribution
ones) as uncertain; see :class:`synthaug.methods.bnn.BayesByBackprop` for the measurements.

References:
    Blundell, Cornebise, Kavukcuoglu & Wierstra (2015). Weight uncertainty in neural
    networks. ICML.
    Kingma, Salimans & Welling (2015). Variational dropout and the local reparameterization
    trick. NeurIPS.
    Wen, Vicol, Ba, Tran & Grosse (2018). Flipout: efficient pseudo-independent weight
    perturbations on mini-batches. ICLR.
    Molchanov, Ashukha & Vetrov (2017). Variational dropout sparsifies deep neural
    networks. ICML.
    Krishnan, Subedar & Tickoo (2020). Specifying weight priors in Bayesian deep neural
    networks with empirical Bayes. AAAI.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from synthaug.errors import ConfigError

Estimator = Literal["lrt", "flipout"]
ESTIMATORS: tuple[str, ...] = ("lrt", "flipout")

# Added to the local-reparameterization variance before the square root: an input patch of
# zeros (after ReLU and padding) in a layer without bias gives a variance of exactly 0, where
# the derivative of sqrt is infinite and the gradient would turn into NaN.
_VARIANCE_FLOOR = 1e-16


def _softplus_inverse(value: float) -> float:
    """``rho`` such that ``softplus(rho) == value`` (for ``value > 0``)."""
    return value + math.log(-math.expm1(-value))


def _rademacher_like(reference: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Random signs (+1 / -1 with equal probability), shaped ``shape``, dtype/device of ``reference``."""
    signs = torch.empty(shape, dtype=reference.dtype, device=reference.device).bernoulli_(0.5)
    return signs.mul_(2.0).sub_(1.0)


class _MeanFieldGaussianLayer(nn.Module):
    """Shared parameters, KL and estimators of the mean-field Gaussian layers.

    Subclasses give the deterministic operation (:meth:`_operation`) and the shape of the
    per-example sign vectors Flipout multiplies inputs and outputs by.

    Args:
        weight: Initial posterior mean of the weights (copied).
        bias: Initial posterior mean of the bias (copied), or ``None`` for no bias.
        estimator: ``"lrt"`` (local reparameterization) or ``"flipout"``.
        prior_sigma: Standard deviation of the zero-mean Gaussian prior of every weight.
        posterior_init_std: Initial posterior standard deviation, relative to the standard
            deviation of the initial weight means of this layer.
        bias_posterior_init_std: Initial posterior standard deviation of the bias, absolute
            (``None``: the same as the weights').
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        *,
        estimator: Estimator,
        prior_sigma: float,
        posterior_init_std: float,
        bias_posterior_init_std: float | None = None,
    ) -> None:
        super().__init__()
        if estimator not in ESTIMATORS:
            raise ConfigError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
        if not prior_sigma > 0:
            raise ConfigError(f"prior_sigma must be > 0, got {prior_sigma}")
        if not posterior_init_std > 0:
            raise ConfigError(f"posterior_init_std must be > 0, got {posterior_init_std}")
        if bias_posterior_init_std is not None and not bias_posterior_init_std > 0:
            raise ConfigError(f"bias_posterior_init_std must be > 0 or None, got {bias_posterior_init_std}")
        self.estimator = estimator
        self.prior_sigma = float(prior_sigma)
        weight = weight.detach().clone().float()
        # Relative to the spread of this layer's weights, so the same setting means "1 % noise"
        # in a 9-input convolution and in a 3136-input linear layer alike.
        weight_scale = float(weight.std()) if weight.numel() > 1 else float(weight.abs().mean())
        initial_sigma = posterior_init_std * (weight_scale if weight_scale > 0 else 1.0)
        initial_rho = _softplus_inverse(initial_sigma)
        self.weight_mu = nn.Parameter(weight)
        self.weight_rho = nn.Parameter(torch.full_like(weight, initial_rho))
        if bias is None:
            self.register_parameter("bias_mu", None)
            self.register_parameter("bias_rho", None)
        else:
            bias = bias.detach().clone().float()
            self.bias_mu = nn.Parameter(bias)
            bias_rho = initial_rho if bias_posterior_init_std is None else _softplus_inverse(bias_posterior_init_std)
            self.bias_rho = nn.Parameter(torch.full_like(bias, bias_rho))

    @property
    def weight_sigma(self) -> torch.Tensor:
        """Posterior standard deviation of the weights, same shape as ``weight_mu``."""
        return F.softplus(self.weight_rho)

    @property
    def bias_sigma(self) -> torch.Tensor | None:
        """Posterior standard deviation of the bias, or ``None`` without bias."""
        return None if self.bias_rho is None else F.softplus(self.bias_rho)

    def kl_divergence(self) -> torch.Tensor:
        """Closed-form ``KL(q || p)`` summed over the weights and bias of this layer.

        For one weight, ``KL(N(mu, s^2) || N(0, p^2)) = log(p / s) + (s^2 + mu^2) / (2 p^2) - 1/2``.

        Returns:
            A scalar tensor (nats), differentiable in ``mu`` and ``rho``.
        """
        total = _gaussian_kl(self.weight_mu, self.weight_sigma, self.prior_sigma)
        if self.bias_mu is not None:
            total = total + _gaussian_kl(self.bias_mu, self.bias_sigma, self.prior_sigma)
        return total

    def _operation(self, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def _sign_shapes(self, inputs: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Shapes of the per-example input and output sign tensors of Flipout."""
        raise NotImplementedError

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Apply the layer with one posterior sample (a fresh one at every call).

        Args:
            inputs: ``(B, in_features)`` for a linear layer, ``(B, C_in, H, W)`` for a
                convolution.

        Returns:
            ``(B, out_features)`` or ``(B, C_out, H', W')``.
        """
        bias_sigma = self.bias_sigma
        if not self.training:
            # At prediction, one weight sample shared by the whole batch is an exact posterior
            # sample for every example: LRT and Flipout only decorrelate the gradient noise
            # within a training minibatch. It costs one ordinary layer, where LRT's second
            # convolution and activation-sized Gaussian noise make it about 3x on a CPU.
            weight = torch.addcmul(self.weight_mu, self.weight_sigma, torch.randn_like(self.weight_mu))
            bias = None if bias_sigma is None else torch.addcmul(self.bias_mu, bias_sigma, torch.randn_like(bias_sigma))
            return self._operation(inputs, weight, bias)
        mean = self._operation(inputs, self.weight_mu, self.bias_mu)
        if self.estimator == "lrt":
            variance = self._operation(
                inputs.square(),
                self.weight_sigma.square(),
                None if bias_sigma is None else bias_sigma.square(),
            )
            # In place and fused: these activation-sized element-wise passes, not the extra
            # convolution, are most of the LRT overhead on a CPU.
            standard_deviation = variance.add_(_VARIANCE_FLOOR).sqrt_()
            return torch.addcmul(mean, standard_deviation, torch.randn_like(mean))
        weight_perturbation = self.weight_sigma * torch.randn_like(self.weight_sigma)
        bias_perturbation = None if bias_sigma is None else bias_sigma * torch.randn_like(bias_sigma)
        input_shape, output_shape = self._sign_shapes(inputs)
        input_signs = _rademacher_like(inputs, input_shape)
        output_signs = _rademacher_like(inputs, output_shape)
        # The bias perturbation is symmetric too, so it may share the output sign flip.
        perturbation = self._operation(inputs * input_signs, weight_perturbation, bias_perturbation)
        return torch.addcmul(mean, perturbation, output_signs)


def _gaussian_kl(mu: torch.Tensor, sigma: torch.Tensor, prior_sigma: float) -> torch.Tensor:
    """Sum over elements of ``KL(N(mu, sigma^2) || N(0, prior_sigma^2))``."""
    variance_ratio = (sigma / prior_sigma).square()
    return 0.5 * (variance_ratio + (mu / prior_sigma).square() - 1.0 - variance_ratio.log()).sum()


class BayesianLinear(_MeanFieldGaussianLayer):
    """Mean-field Gaussian counterpart of :class:`torch.nn.Linear`.

    Args:
        in_features: Input width.
        out_features: Output width.
        bias: Learn a (Gaussian) bias.
        estimator: ``"lrt"`` or ``"flipout"`` (see the module docstring).
        prior_sigma: Standard deviation of the ``N(0, prior_sigma^2)`` prior.
        posterior_init_std: Initial posterior std relative to the std of the initial means.
        bias_posterior_init_std: Initial posterior std of the bias, absolute (``None``: as
            the weights).
        weight: Initial posterior means ``(out_features, in_features)``; ``None`` uses
            :class:`torch.nn.Linear`'s default initialisation.
        bias_init: Initial bias means ``(out_features,)`` (with ``weight``).

    Shapes:
        ``(B, in_features) -> (B, out_features)``.

    References:
        Blundell et al. (2015); Kingma, Salimans & Welling (2015); Wen et al. (2018).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        estimator: Estimator = "lrt",
        prior_sigma: float = 1.0,
        posterior_init_std: float = 1e-2,
        bias_posterior_init_std: float | None = None,
        weight: torch.Tensor | None = None,
        bias_init: torch.Tensor | None = None,
    ) -> None:
        if weight is None:
            reference = nn.Linear(in_features, out_features, bias=bias)
            weight, bias_init = reference.weight, reference.bias
        if tuple(weight.shape) != (out_features, in_features):
            raise ConfigError(
                f"BayesianLinear: weight shape {tuple(weight.shape)} does not match "
                f"({out_features}, {in_features})"
            )
        super().__init__(
            weight,
            bias_init if bias else None,
            estimator=estimator,
            prior_sigma=prior_sigma,
            posterior_init_std=posterior_init_std,
            bias_posterior_init_std=bias_posterior_init_std,
        )
        self.in_features = in_features
        self.out_features = out_features

    @classmethod
    def from_linear(cls, layer: nn.Linear, **options: object) -> BayesianLinear:
        """A Bayesian copy of ``layer`` whose posterior means are its weights and bias."""
        return cls(
            layer.in_features,
            layer.out_features,
            bias=layer.bias is not None,
            weight=layer.weight,
            bias_init=layer.bias,
            **options,  # type: ignore[arg-type]
        )

    def _operation(self, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.linear(inputs, weight, bias)

    def _sign_shapes(self, inputs: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
        batch = inputs.shape[:-1]
        return (*batch, self.in_features), (*batch, self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias_mu is not None}, estimator={self.estimator!r}, "
            f"prior_sigma={self.prior_sigma}"
        )


class BayesianConv2d(_MeanFieldGaussianLayer):
    """Mean-field Gaussian counterpart of :class:`torch.nn.Conv2d` (zero padding only).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Kernel side or ``(height, width)``.
        stride: As in :class:`torch.nn.Conv2d`.
        padding: As in :class:`torch.nn.Conv2d` (an int, a pair, ``"same"`` or ``"valid"``).
        dilation: As in :class:`torch.nn.Conv2d`.
        groups: As in :class:`torch.nn.Conv2d`.
        bias: Learn a (Gaussian) bias.
        estimator: ``"lrt"`` or ``"flipout"`` (see the module docstring).
        prior_sigma: Standard deviation of the ``N(0, prior_sigma^2)`` prior.
        posterior_init_std: Initial posterior std relative to the std of the initial means.
        bias_posterior_init_std: Initial posterior std of the bias, absolute (``None``: as
            the weights).
        weight: Initial posterior means ``(C_out, C_in / groups, kH, kW)``; ``None`` uses
            :class:`torch.nn.Conv2d`'s default initialisation.
        bias_init: Initial bias means ``(C_out,)`` (with ``weight``).

    Shapes:
        ``(B, C_in, H, W) -> (B, C_out, H', W')``.

    References:
        Blundell et al. (2015); Kingma, Salimans & Welling (2015); Wen et al. (2018).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        *,
        estimator: Estimator = "lrt",
        prior_sigma: float = 1.0,
        posterior_init_std: float = 1e-2,
        bias_posterior_init_std: float | None = None,
        weight: torch.Tensor | None = None,
        bias_init: torch.Tensor | None = None,
    ) -> None:
        reference = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=bias
        )
        if weight is None:
            weight, bias_init = reference.weight, reference.bias
        if weight.shape != reference.weight.shape:
            raise ConfigError(
                f"BayesianConv2d: weight shape {tuple(weight.shape)} does not match "
                f"{tuple(reference.weight.shape)}"
            )
        super().__init__(
            weight,
            bias_init if bias else None,
            estimator=estimator,
            prior_sigma=prior_sigma,
            posterior_init_std=posterior_init_std,
            bias_posterior_init_std=bias_posterior_init_std,
        )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = reference.kernel_size
        self.stride = reference.stride
        self.padding = reference.padding
        self.dilation = reference.dilation
        self.groups = groups

    @classmethod
    def from_conv2d(cls, layer: nn.Conv2d, **options: object) -> BayesianConv2d:
        """A Bayesian copy of ``layer`` whose posterior means are its weights and bias."""
        if layer.padding_mode != "zeros":
            raise ConfigError(
                f"BayesianConv2d supports padding_mode='zeros' only, got {layer.padding_mode!r}"
            )
        return cls(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,  # type: ignore[arg-type]
            layer.stride,  # type: ignore[arg-type]
            layer.padding,  # type: ignore[arg-type]
            layer.dilation,  # type: ignore[arg-type]
            layer.groups,
            bias=layer.bias is not None,
            weight=layer.weight,
            bias_init=layer.bias,
            **options,  # type: ignore[arg-type]
        )

    def _operation(self, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(inputs, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def _sign_shapes(self, inputs: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
        # One sign per example and channel, shared over positions: the perturbation of a
        # convolution is shared over positions too, so this keeps each example's sample exact.
        batch = inputs.shape[0]
        return (batch, self.in_channels, 1, 1), (batch, self.out_channels, 1, 1)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias_mu is not None}, "
            f"estimator={self.estimator!r}, prior_sigma={self.prior_sigma}"
        )


BAYESIAN_LAYER_TYPES = (BayesianLinear, BayesianConv2d)


def convert_to_bayesian(
    model: nn.Module,
    *,
    bayesian_layers: Literal["all", "last"] | int = "all",
    estimator: Estimator = "lrt",
    prior_sigma: float = 1.0,
    posterior_init_std: float = 1e-2,
    bias_posterior_init_std: float | None = None,
) -> nn.Module:
    """Return a copy of ``model`` with its linear and convolution layers made Bayesian.

    The posterior means start at the layers' current weights: convert a freshly built
    network for a standard initialisation, or a trained one to start the posterior at the
    deterministic solution (Krishnan et al. 2020). Other modules (batch norm, ...) stay
    deterministic point estimates. ``model`` itself is not modified.

    Args:
        model: Any module; its :class:`torch.nn.Linear` and :class:`torch.nn.Conv2d`
            layers are candidates, in ``named_modules`` (definition) order.
        bayesian_layers: ``"all"`` of them, ``"last"`` (the output layer only; the rest
            stay deterministic and are still trained), or an int ``k`` for the last ``k``.
        estimator: ``"lrt"`` or ``"flipout"``.
        prior_sigma: Standard deviation of the ``N(0, prior_sigma^2)`` prior.
        posterior_init_std: Initial posterior std relative to each layer's weight std.
        bias_posterior_init_std: Initial posterior std of every bias, absolute (``None``:
            relative, as the weights).

    Returns:
        The converted copy.

    Raises:
        ConfigError: ``bayesian_layers`` is invalid or asks for more layers than exist.
    """
    converted = copy.deepcopy(model)
    candidates = [
        name
        for name, module in converted.named_modules()
        if isinstance(module, (nn.Linear, nn.Conv2d)) and not isinstance(module, BAYESIAN_LAYER_TYPES)
    ]
    count = _number_of_bayesian_layers(bayesian_layers, len(candidates))
    options = {
        "estimator": estimator,
        "prior_sigma": prior_sigma,
        "posterior_init_std": posterior_init_std,
        "bias_posterior_init_std": bias_posterior_init_std,
    }
    for name in candidates[len(candidates) - count :]:
        parent_name, _, child_name = name.rpartition(".")
        parent = converted.get_submodule(parent_name)
        layer = parent.get_submodule(child_name)
        if isinstance(layer, nn.Linear):
            replacement: nn.Module = BayesianLinear.from_linear(layer, **options)
        else:
            replacement = BayesianConv2d.from_conv2d(layer, **options)
        setattr(parent, child_name, replacement.to(layer.weight.device))
    return converted


def _number_of_bayesian_layers(bayesian_layers: str | int, available: int) -> int:
    if available == 0:
        raise ConfigError("the model has no nn.Linear or nn.Conv2d layer to make Bayesian")
    if bayesian_layers == "all":
        return available
    if bayesian_layers == "last":
        return 1
    if isinstance(bayesian_layers, bool) or not isinstance(bayesian_layers, int):
        raise ConfigError(
            f"bayesian_layers must be 'all', 'last' or a positive int, got {bayesian_layers!r}"
        )
    if not 1 <= bayesian_layers <= available:
        raise ConfigError(
            f"bayesian_layers={bayesian_layers} but the model has {available} linear/conv layers; "
            f"use a number from 1 to {available} or 'all'"
        )
    return bayesian_layers


def bayesian_layers_of(model: nn.Module) -> list[_MeanFieldGaussianLayer]:
    """The mean-field Gaussian layers of ``model``, in definition order."""
    return [module for module in model.modules() if isinstance(module, _MeanFieldGaussianLayer)]


def kl_divergence(model: nn.Module) -> torch.Tensor:
    """``KL(q || p)`` of all Bayesian layers of ``model``, summed (a scalar tensor, nats).

    Raises:
        ConfigError: ``model`` has no Bayesian layer (it was probably never converted).
    """
    layers = bayesian_layers_of(model)
    if not layers:
        raise ConfigError("the model has no Bayesian layer; convert it with convert_to_bayesian first")
    return torch.stack([layer.kl_divergence() for layer in layers]).sum()
