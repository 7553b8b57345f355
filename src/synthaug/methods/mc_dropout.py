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
    of accuracy). With more data it recovers (10,000 images: 0.915; all 54,000, 10 epochs,
    seeds 0-2: 0.967), not with more epochs (100 per class, up to 100 epochs: 0.507 over seeds
    0-2; the demo's 80 per class, seeds 0-2: 0.457 on real images, 0.531 on generated ones).
    Read its predictive entropy, not its mutual information, as the OOD score on small
    training sets; the report flags an epistemic AUROC at chance. The ``bnn`` method's
    Bayesian output bias is the remedy that works (see :class:`~synthaug.methods.bnn.BayesByBackprop`);
    making the features themselves distance-aware (spectral normalisation, Liu et al. 2020;
    van Amersfoort et al. 2020 on "feature collapse") would change the backbone, not the
    method. The same feature-following noise makes MC dropout the better calibrated one under
    shift: at severity 5 of :mod:`synthaug.data.shift` its ECE is 0.377 against the
    deterministic network's 0.449 on 54,000 images and 0.283 against 0.318 at 100 per class
    (``benchmarks/methods_fashion_mnist.py --shift-severity 5``).

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
