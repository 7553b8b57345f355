"""``mc-dropout``: dropout kept on at test time, S stochastic forward passes."""

from __future__ import annotations

import torch
from torch import nn

from synthaug.errors import ConfigError
from synthaug.methods.base import register_method
from synthaug.methods.deterministic import Deterministic
from synthaug.methods.training import has_dropout, sample_log_proba


@register_method("mc-dropout")
class MCDropout(Deterministic):
    """Monte Carlo dropout: the dropout network as approximate Bayesian inference.

    Trained exactly like :class:`~synthaug.methods.deterministic.Deterministic`; at test time
    the dropout layers stay on (batch norm stays in eval mode) and each of ``num_samples``
    forward passes is one sample of the approximate posterior predictive.

    Read its predictive entropy, not its mutual information, as the OOD score on small
    training sets. Dropout noise is multiplicative, so the variance it adds to the logits
    shrinks with the features, and a network maps OOD inputs to smaller features: on a few
    dozen images per class the mutual information ranks OOD inputs at or below chance (the
    report flags an epistemic AUROC at chance); it recovers with tens of thousands of
    images. The ``bnn`` method's Bayesian output bias is the remedy that works. The same
    feature-following noise makes MC dropout better calibrated than the deterministic network
    under shift. Measurements: ``docs/methods.md`` (section ``mc-dropout``).

    Args:
        num_samples: Forward passes S at prediction time.
        **common: The hyper-parameters of :class:`~synthaug.methods.base.UncertaintyMethod`;
            ``dropout`` must leave the trainable module with non-zero dropout.

    References:
        Gal & Ghahramani, "Dropout as a Bayesian Approximation: Representing Model
        Uncertainty in Deep Learning", ICML 2016.
        Ovadia et al., "Can You Trust Your Model's Uncertainty? Evaluating Predictive
        Uncertainty Under Dataset Shift", NeurIPS 2019.
        Liu et al., "Simple and Principled Uncertainty Estimation with Deterministic Deep
        Learning via Distance Awareness", NeurIPS 2020.
        van Amersfoort, Smith, Teh & Gal, "Uncertainty Estimation Using a Single Deep
        Deterministic Neural Network", ICML 2020.
    """

    def __init__(self, *, num_samples: int = 30, **common) -> None:
        super().__init__(**common)
        self.num_samples = num_samples

    def _init_state(self) -> None:
        if self.num_samples < 1:
            raise ConfigError(f"mc-dropout: num_samples must be >= 1, got {self.num_samples}")
        super()._init_state()
        if not has_dropout(self.model_):
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
