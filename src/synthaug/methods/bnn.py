"""``bnn``: a Bayesian neural network trained by Bayes by Backprop.

Mean-field Gaussian variational inference over the weights of the backbone's trainable
module (all of its linear/convolution layers or only the last ones), trained by maximising
the evidence lower bound (ELBO) with the reparameterisation gradient. The study synthaug
reproduces reports a BNN at 19.56 % accuracy where a deterministic network reached 91 %;
every default below is there to keep this one from collapsing, and says why.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
from torch import nn

from synthaug.errors import ConfigError
from synthaug.methods.base import UncertaintyMethod, register_method
from synthaug.methods.training import PreparedData, has_dropout, sample_log_proba, seeded, train_model
from synthaug.models.bayesian import BAYESIAN_LAYER_TYPES, ESTIMATORS, Estimator, convert_to_bayesian, kl_divergence

# Weight samples averaged when scoring the validation set for early stopping: one sample
# makes the validation NLL noisy (and biased upwards); ten cost one extra pass over a
# validation set a tenth the size of the training set.
VALIDATION_SAMPLES = 10


class ScaledKL:
    """The KL part of the minibatch ELBO loss: ``kl_weight * KL(q || p) / n_train``.

    The negative ELBO over the whole training set is ``sum_n NLL_n + KL``. Training on
    minibatches with the *mean* NLL, each minibatch must carry ``KL / N_train`` so that
    one epoch of steps adds up to ``(sum_n NLL_n + KL) / batch_size``, an unbiased estimate
    of the negative ELBO divided by the batch size (Blundell et al. 2015, eq. 8 with
    ``pi_i = 1 / M``, and Graves 2011). Dividing by the number of batches instead, or not at
    all, over-weights the prior by ``batch_size`` times or more: a classic cause of a BNN
    whose posterior collapses onto the prior and predicts at chance level.

    Used as the ``extra_loss`` hook of :func:`~synthaug.methods.training.train_model`, which
    calls it once per optimiser step.

    Args:
        annealing_examples: Number of training examples seen over which ``kl_weight`` grows
            linearly from ~0 to 1 (0: the full ELBO from the first step).
        batch_size: Examples per step (to count examples seen).

    Attributes:
        steps: Number of calls so far (optimiser steps).
    """

    def __init__(self, annealing_examples: int = 0, batch_size: int = 1) -> None:
        self.annealing_examples = annealing_examples
        self.batch_size = batch_size
        self.steps = 0

    @property
    def kl_weight(self) -> float:
        """The weight of the KL term at the current step (1 once annealing is over)."""
        if self.annealing_examples <= 0:
            return 1.0
        return min(1.0, self.steps * self.batch_size / self.annealing_examples)

    def __call__(self, model: nn.Module, n_train: int) -> torch.Tensor:
        """``kl_weight * KL(q || p) / n_train`` for the next optimiser step (scalar tensor)."""
        self.steps += 1
        return self.kl_weight * kl_divergence(model) / n_train


def bayesian_sample_log_proba(model: nn.Sequential, inputs: torch.Tensor, num_samples: int) -> torch.Tensor:
    """``(S, N, C)`` log-probabilities of ``num_samples`` posterior weight samples (eval mode)."""
    return sample_log_proba(
        model, inputs, num_samples, is_stochastic=lambda module: isinstance(module, BAYESIAN_LAYER_TYPES)
    )


def averaged_log_proba(model: nn.Sequential, inputs: torch.Tensor, num_samples: int) -> torch.Tensor:
    """Log of the Monte Carlo predictive ``mean_s softmax(f(x; w_s))``, ``(N, C)``.

    Probabilities (not logits) are averaged: that is the Bayesian model average
    ``p(y | x) = E_q[p(y | x, w)]``.
    """
    log_proba = bayesian_sample_log_proba(model, inputs, num_samples)
    return torch.logsumexp(log_proba, dim=0) - math.log(num_samples)


@register_method("bnn")
class BayesByBackprop(UncertaintyMethod):
    """Bayes by Backprop with mean-field Gaussian posteriors, LRT or Flipout gradients.

    Training minimises, per minibatch, ``mean NLL + kl_weight * KL(q || p) / N_train`` (see
    :class:`ScaledKL`) with **one** weight sample per step: the reparameterisation gradient
    is unbiased with one sample, and the local reparameterization trick / Flipout make
    the samples (pseudo-)independent across the minibatch, so more samples per step would
    mostly multiply the cost. Prediction draws ``num_samples`` (default 30, >= 20 advised)
    weight samples and returns their softmax outputs ``(S, N, C)``; the metrics average
    these *probabilities*. Batch norm and dropout run in eval mode at prediction.

    Why the default is the deterministic network with a Bayesian output layer and a wide
    Bayesian bias: with a posterior on the output layer the logit variance is
    ``Var[f_k(x)] = sum_j sigma_kj^2 phi_j(x)^2 + s_k^2``. Weight noise is multiplicative, so
    it shrinks with the features ``phi(x)``, and a network maps OOD inputs to smaller features;
    weight-only posteriors (every layer, MC dropout, a wider initial posterior) then give a
    mutual information at or below chance as an OOD score. The bias variance ``s_k^2`` does not
    shrink with the features, and costs little likelihood on fitted examples (the gradient of
    ``b_k`` is ``p_k - y_k``), so the KL to the prior holds it up and the mutual information
    grows with how flat the predictive is. It therefore ranks OOD inputs much as the
    predictive entropy does, and the report says so. The derivation, the lever sweep, the
    results over training-set sizes and under shift are in ``docs/methods.md`` (section
    ``bnn``) and ``benchmarks/results/bnn_levers.cpu.txt``.

    Why each choice is there (what makes a BNN train in practice):

    - ``estimator``: plain Bayes by Backprop shares one weight sample across the minibatch,
      so its gradient variance does not shrink with the batch size and training is slow
      and noisy. LRT (Kingma et al. 2015) samples pre-activations independently per
      example; Flipout (Wen et al. 2018) decorrelates one shared sample with random sign
      flips and stays exact for convolutions. Both cost about 2x a deterministic layer.
    - ``posterior_init_std``: the posterior starts *narrow* (1 % of each layer's weight
      spread). A wide initial posterior drowns the signal in noise, the likelihood gradient
      vanishes and the KL pulls every weight to the prior: the network collapses to chance.
      Started narrow, it first fits like a deterministic net, then the KL widens each
      weight's variance (Blundell et al. 2015 start at ``sigma ~ 7e-3`` for the same reason).
    - One learning rate for means and standard deviations: Adam moves ``rho`` (a log-scale
      parameter for small sigma) by about ``learning_rate`` per step, so the posterior
      widens gradually during training, and early stopping on the validation NLL of the
      averaged predictive keeps the best epoch. Pushing the mean-field posterior to its
      optimum faster (a 30x learning rate for ``rho``) reproduces the known pathology of
      mean-field VI in wide networks: the posterior of most weights falls back to the prior
      ("over-pruning") and the network underfits (Trippe & Turner 2018; Coker et al. 2022).
    - ``prior_sigma``: a zero-mean Gaussian ``N(0, prior_sigma^2)`` with a closed-form KL
      (no Monte Carlo noise in the regulariser, unlike the scale mixture of Blundell et al.).
      With ``sigma << prior_sigma`` its pull on the means is an L2 penalty of
      ``1 / (2 prior_sigma^2 N)``, a mild weight decay at the default 1.0 (the standard
      choice, e.g. Wen et al. 2018). Tighter priors make the KL dominate and the network
      underfit.
    - ``kl_annealing_epochs``: optional warm-up of the KL weight from 0 to 1 (Bowman et al.
      2016; Sønderby et al. 2016), letting the likelihood shape the means before the prior
      acts; after it the objective is the true ELBO. Off by default: with a narrow initial
      posterior the KL's pull on the means is already weak.
    - ``init_from_deterministic``: optionally pre-train the deterministic network for
      ``pretrain_epochs`` with the same optimiser and start the posterior means there
      (Krishnan et al. 2020, "MOPED"); useful for deep networks where VI from scratch is slow.
    - ``bayesian_layers`` defaults to ``"last"`` (``"all"`` for full-network VI, an int for
      the last k layers): partially stochastic networks keep the deterministic network's
      accuracy and much of the predictive uncertainty at a fraction of the KL (Kristiadi et
      al. 2020; Sharma et al. 2023), a training step costs about what a deterministic one
      does (``benchmarks/bnn_step.py``), and prediction reruns only the output layer S times.
      The other layers are trained as point estimates. Full-network VI with the same
      Bayesian bias was no better at separating OOD data and is 2x slower.
    - ``bias_posterior_init_std`` defaults to 0.5 on the logit scale (see above): 0.2
      separates OOD data a little less, 1.0 a little more at a higher NLL.
    - ``num_samples``: 30; 10 samples estimate the mutual information too noisily, 100 add
      nothing.
    - ``dropout`` defaults to the backbone's (``None``; 0.3 for ``cnn``), off at prediction.
      It is what lets the mutual information separate OOD inputs on large training sets, and
      it costs a little accuracy and NLL on very small ones: ``dropout=0`` is the choice for a
      few dozen images per class.
    - ``test_time_dropout`` (off): sampling the features too calibrates better under shift,
      but the mutual information then stops separating OOD inputs, as for MC dropout.

    Args:
        estimator: ``"lrt"`` or ``"flipout"``.
        bayesian_layers: ``"all"``, ``"last"`` or the number of last linear/conv layers.
        prior_sigma: Standard deviation of the Gaussian prior on every weight.
        posterior_init_std: Initial posterior std relative to each layer's weight std.
        bias_posterior_init_std: Initial posterior std of the biases, absolute (on the logit
            scale for the output layer); ``None``: relative, as the weights.
        kl_annealing_epochs: Epochs over which the KL weight rises linearly to 1 (0: none).
        init_from_deterministic: Pre-train the deterministic network first and start the
            posterior means at its weights.
        pretrain_epochs: Epochs of that pre-training.
        num_samples: Weight samples S drawn at prediction.
        dropout: Dropout of the trainable module while training (``None``, the default: the
            backbone's; see above).
        test_time_dropout: Keep that dropout on at prediction too, so that each sample also
            draws the features (MC dropout on top of the posterior; see above).
        **common: The hyper-parameters of :class:`~synthaug.methods.base.UncertaintyMethod`;
            ``weight_decay`` must stay 0 (the prior is the weight decay).

    Attributes:
        classes_: Class names, index = label.
        backbone_: The fitted :class:`~synthaug.models.Backbone`.
        model_: The trainable module with Bayesian layers (``weight_mu`` / ``weight_rho``).
        history_: :class:`~synthaug.methods.training.TrainingHistory` of the variational fit.

    References:
        Blundell, Cornebise, Kavukcuoglu & Wierstra, "Weight Uncertainty in Neural
        Networks", ICML 2015.
        Graves, "Practical Variational Inference for Neural Networks", NeurIPS 2011.
        Kingma, Salimans & Welling, "Variational Dropout and the Local Reparameterization
        Trick", NeurIPS 2015.
        Wen, Vicol, Ba, Tran & Grosse, "Flipout: Efficient Pseudo-Independent Weight
        Perturbations on Mini-Batches", ICLR 2018.
        Krishnan, Subedar & Tickoo, "Specifying Weight Priors in Bayesian Deep Neural
        Networks with Empirical Bayes", AAAI 2020.
        Kristiadi, Hein & Hennig, "Being Bayesian, Even Just a Bit, Fixes Overconfidence in
        ReLU Networks", ICML 2020.
        Sharma, Farquhar, Nalisnick & Rainforth, "Do Bayesian Neural Networks Need To Be
        Fully Stochastic?", AISTATS 2023.
        Trippe & Turner, "Overpruning in Variational Bayesian Neural Networks", 2018.
        Coker, Bruinsma, Burt, Pan & Doshi-Velez, "Wide Mean-Field Bayesian Neural Networks
        Ignore the Data", AISTATS 2022.
        Bowman et al., "Generating Sentences from a Continuous Space", CoNLL 2016.
        Sønderby et al., "Ladder Variational Autoencoders", NeurIPS 2016.
        Dusenberry et al., "Efficient and Scalable Bayesian Neural Nets with Rank-1
        Factors", ICML 2020.
        Harrison, Willes & Snoek, "Variational Bayesian Last Layers", ICLR 2024.
        Ovadia et al., "Can You Trust Your Model's Uncertainty? Evaluating Predictive
        Uncertainty Under Dataset Shift", NeurIPS 2019.
    """

    def __init__(
        self,
        *,
        estimator: Estimator = "lrt",
        bayesian_layers: Literal["all", "last"] | int = "last",
        prior_sigma: float = 1.0,
        posterior_init_std: float = 1e-2,
        bias_posterior_init_std: float | None = 0.5,
        kl_annealing_epochs: int = 0,
        init_from_deterministic: bool = False,
        pretrain_epochs: int = 3,
        num_samples: int = 30,
        dropout: float | None = None,
        test_time_dropout: bool = False,
        **common,
    ) -> None:
        super().__init__(dropout=dropout, **common)
        self.estimator = estimator
        self.bayesian_layers = bayesian_layers
        self.prior_sigma = prior_sigma
        self.posterior_init_std = posterior_init_std
        self.bias_posterior_init_std = bias_posterior_init_std
        self.kl_annealing_epochs = kl_annealing_epochs
        self.init_from_deterministic = init_from_deterministic
        self.pretrain_epochs = pretrain_epochs
        self.num_samples = num_samples
        self.test_time_dropout = test_time_dropout

    def _check_options(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"bnn: estimator must be one of {', '.join(ESTIMATORS)}, got {self.estimator!r}")
        if self.num_samples < 1:
            raise ConfigError(f"bnn: num_samples must be >= 1 (>= 20 advised), got {self.num_samples}")
        if self.bias_posterior_init_std is not None and not self.bias_posterior_init_std > 0:
            raise ConfigError(
                f"bnn: bias_posterior_init_std must be > 0 or null, got {self.bias_posterior_init_std}"
            )
        if self.kl_annealing_epochs < 0:
            raise ConfigError(f"bnn: kl_annealing_epochs must be >= 0, got {self.kl_annealing_epochs}")
        if self.init_from_deterministic and self.pretrain_epochs < 1:
            raise ConfigError(f"bnn: pretrain_epochs must be >= 1, got {self.pretrain_epochs}")
        if self.weight_decay != 0:
            raise ConfigError(
                f"bnn: weight_decay={self.weight_decay} would regularise the variational "
                "parameters on top of the prior; set weight_decay=0 and tune prior_sigma instead"
            )

    def _bayesian(self, network: nn.Module) -> nn.Module:
        """``network`` with its chosen layers made Bayesian, means at its current weights."""
        return convert_to_bayesian(
            network,
            bayesian_layers=self.bayesian_layers,
            estimator=self.estimator,
            prior_sigma=self.prior_sigma,
            posterior_init_std=self.posterior_init_std,
            bias_posterior_init_std=self.bias_posterior_init_std,
        ).to(self.torch_device())

    def _init_state(self) -> None:
        self._check_options()
        self.model_ = self._bayesian(self.backbone_.build_trainable(len(self.classes_), dropout=self.dropout))
        if self.test_time_dropout and not has_dropout(self.model_):
            raise ConfigError("bnn: test_time_dropout needs dropout > 0 in the trainable module; set dropout or "
                              "leave it null (the backbone's)")

    def _fit_prepared(self, train: PreparedData, val: PreparedData) -> None:
        config = self.training_config()
        if self.init_from_deterministic:
            with seeded(self.seed):
                network = self.backbone_.build_trainable(len(self.classes_), dropout=self.dropout)
            train_model(
                network,
                train,
                val,
                dataclasses.replace(config, epochs=self.pretrain_epochs),
                seed=self.seed,
                device=self.torch_device(),
                progress=self.progress,
                description=f"{self.key} pre-training",
            )
            self.model_ = self._bayesian(network)
        scaled_kl = ScaledKL(self.kl_annealing_epochs * len(train), config.batch_size)
        self.history_ = train_model(
            self.model_,
            train,
            val,
            config,
            seed=self.seed,
            device=self.torch_device(),
            extra_loss=scaled_kl,
            validation_log_proba=lambda model, inputs: averaged_log_proba(model, inputs, VALIDATION_SAMPLES),
            progress=self.progress,
            description=self.key,
        )

    def _predict_log_proba(self, inputs: torch.Tensor) -> torch.Tensor:
        # Each pass draws fresh weights (the Bayesian layers always sample), while batch norm
        # uses its running statistics and dropout is off unless asked for; layers before the
        # first stochastic one run once (see sample_log_proba).
        if not self.test_time_dropout:
            return bayesian_sample_log_proba(self.model_, inputs, self.num_samples)
        return sample_log_proba(
            self.model_,
            inputs,
            self.num_samples,
            is_stochastic=lambda module: isinstance(module, (*BAYESIAN_LAYER_TYPES, nn.Dropout)),
            device=self.torch_device(),
            dropout=True,
        )
