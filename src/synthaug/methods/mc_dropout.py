"""``mc-dropout``: dropout kept on at test time, S stochastic forward passes."""

from __future__ import annotations

import torch
from torch import nn

from synthaug.errors import ConfigError
from synthaug.methods.base import register_method
from synthaug.methods.deterministic import Deterministic
from synthaug.methods.training import sample_log_proba


@register_method("mc-dropout")
class MCDropout(Deterministic):
    """Monte Carlo dropout: the dropout network as approximate Bayesian inference.

    Trained exactly like :class:`~synthaug.methods.deterministic.Deterministic`; at test time
    the dropout layers stay on (batch norm stays in eval mode) and each of ``num_samples``
    forward passes is one sample of the approximate posterior predictive.

    Args:
        num_samples: Forward passes S at prediction time.
        **common: The hyper-parameters of :class:`~synthaug.methods.base.UncertaintyMethod`;
            ``dropout`` must leave the trainable module with non-zero dropout.

    References:
        Gal & Ghahramani, "Dropout as a Bayesian Approximation: Representing Model
        Uncertainty in Deep Learning", ICML 2016.
    """

    def __init__(self, *, num_samples: int = 30, **common) -> None:
        super().__init__(**common)
        self.num_samples = num_samples

    def _init_state(self) -> None:
        if self.num_samples < 1:
            raise ConfigError(f"mc-dropout: num_samples must be >= 1, got {self.num_samples}")
        super()._init_state()
        if not any(isinstance(m, nn.Dropout) and m.p > 0 for m in self.model_.modules()):
            raise ConfigError("mc-dropout needs dropout > 0 in the backbone's trainable module")

    def _predict_log_proba(self, inputs: torch.Tensor) -> torch.Tensor:
        return sample_log_proba(
            self.model_,
            inputs,
            self.num_samples,
            is_stochastic=lambda module: isinstance(module, nn.Dropout),
            device=self.torch_device(),
            dropout=True,
        )
