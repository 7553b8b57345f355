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

    What its mutual information is worth (issue 14). Dropout is on where it should be at
    test time — both dropout layers of the ``cnn`` classifier, at the trained rate (0.3), on
    every pass, with batch norm frozen (a test checks this) — and it is not small: the mean
    mutual information on the Fashion-MNIST test set is 0.08 nats at 80 images per class.
    But dropout noise is multiplicative: the variance it adds to logit ``k`` is
    ``p / (1 - p) * sum_j W_kj^2 h_j(x)^2``, which shrinks with the features ``h(x)``, and a
    Fashion-MNIST network maps scikit-learn digits to features of 0.4-0.5x the test images'
    norm. The flatter softmax on digits does not make up for it, so the mutual information
    is *lower* on the OOD set: AUROC 0.447 and 0.464 (seeds 0, 1; 80 per class, 8 epochs;
    ``benchmarks/bnn_levers.py``) where predictive entropy gives 0.99. The rate does not
    change that (0.1: 0.462; 0.5: 0.362, and 2 points of accuracy), nor does sampling the
    features too (dropout after each convolution block, 0.1 / 0.2: 0.343 / 0.312, 1.5 points
    of accuracy). With more data it recovers (10,000 images: 0.915, 100 per class: 0.537).
    Read its predictive entropy, not its mutual information, as the OOD score on small
    training sets; the report flags an epistemic AUROC at chance. The ``bnn`` method's
    Bayesian output bias is the remedy that works (see :class:`~synthaug.methods.bnn.BayesByBackprop`).

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
