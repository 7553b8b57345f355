"""``laplace``: a last-layer Laplace approximation around the trained network.

The network is trained by maximum likelihood exactly like ``deterministic`` (the shared
training loop); then a Gaussian posterior ``N(theta_MAP, P^{-1})`` is fitted over the
output layer's weights and bias by laplace-torch, with ``P`` the Kronecker-factored
generalised Gauss-Newton curvature of the training loss plus the prior precision, and
the prior precision is tuned by the marginal likelihood (or the validation NLL).
Prediction samples the linearised ("GLM") predictive in logit space.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import torch
import torch.nn.functional as F

from synthaug.errors import ConfigError
from synthaug.methods.base import UncertaintyMethod, register_method
from synthaug.methods.deterministic import Deterministic
from synthaug.methods.training import PreparedData, PreparedLoader

HESSIAN_STRUCTURES = ("kron", "diag", "full")
PRIOR_PRECISION_METHODS = ("marglik", "gridsearch")

# The grid of prior precisions tried by ``prior_precision_method="gridsearch"``: 10^-4 .. 10^4
# in 21 steps. Coarser than laplace-torch's 100-point default, because each point costs a
# forward pass over the validation set and the NLL is flat on this scale.
GRID = {"log_prior_prec_min": -4.0, "log_prior_prec_max": 4.0, "grid_size": 21}

# Prefix of the Laplace posterior tensors in ``weights.safetensors`` (the rest is the MAP network).
STATE_PREFIX = "laplace."


@register_method("laplace")
class LastLayerLaplace(Deterministic):
    """Last-layer Laplace approximation (Daxberger et al. 2021) via laplace-torch.

    1. Train the backbone's trainable module to its MAP / maximum-likelihood solution with
       the shared training loop (same options and early stopping as ``deterministic``).
    2. ``Laplace(model, "classification", subset_of_weights="last_layer",
       hessian_structure=...)`` and ``fit`` on the training set: the posterior over the
       output layer is Gaussian, centred at the trained weights, with precision = GGN of
       the training NLL + prior precision. The feature layers stay at their point estimate,
       which keeps the cost at one pass over the training set (Kristiadi et al. 2020 show
       this is enough to fix the overconfidence of ReLU networks away from the data).
    3. Tune the prior precision: ``"marglik"`` maximises the Laplace marginal likelihood
       of the training data (MacKay 1992; no validation data used) and ``"gridsearch"``
       minimises the validation NLL of the probit-approximated predictive over
       ``10^-4 .. 10^4``.
    4. Predict with the linearised (GLM) predictive: the logits ``f(x)`` are Gaussian with
       mean ``f_MAP(x)`` and covariance ``J(x) P^{-1} J(x)^T``; ``num_samples`` logit
       vectors are drawn from it (laplace-torch's ``functional_samples``) and passed
       through the softmax, giving the ``(S, N, C)`` samples the metrics average. The GLM
       predictive is the one consistent with the GGN curvature (Immer et al. 2021), and it
       is cheap: the features are computed once per input, not once per sample.

    Per-example training weights (mixed datasets) weight the MAP training loss but not the
    curvature, which laplace-torch computes from the plain training set.

    Args:
        hessian_structure: ``"kron"`` (K-FAC, the default of Daxberger et al.), ``"diag"``
            or ``"full"`` (exact for the last layer; ``(D*C)^2`` memory).
        prior_precision_method: ``"marglik"`` or ``"gridsearch"`` (see above).
        num_samples: Logit samples S drawn from the GLM predictive at prediction.
        **common: The hyper-parameters of :class:`~synthaug.methods.base.UncertaintyMethod`.

    Attributes:
        classes_: Class names, index = label.
        backbone_: The fitted :class:`~synthaug.models.Backbone`.
        model_: The trained MAP network.
        laplace_: The fitted laplace-torch posterior (last layer).
        history_: :class:`~synthaug.methods.training.TrainingHistory` of the MAP training.

    References:
        Daxberger, Kristiadi, Immer, Eschenhagen, Bauer & Hennig, "Laplace Redux — Effortless
        Bayesian Deep Learning", NeurIPS 2021.
        Kristiadi, Hein & Hennig, "Being Bayesian, Even Just a Bit, Fixes Overconfidence in
        ReLU Networks", ICML 2020.
        Immer, Korzepa & Bauer, "Improving predictions of Bayesian neural nets via local
        linearization", AISTATS 2021.
        MacKay, "A Practical Bayesian Framework for Backpropagation Networks", Neural
        Computation 1992.
    """

    def __init__(
        self,
        *,
        hessian_structure: Literal["kron", "diag", "full"] = "kron",
        prior_precision_method: Literal["marglik", "gridsearch"] = "marglik",
        num_samples: int = 30,
        **common,
    ) -> None:
        super().__init__(**common)
        self.hessian_structure = hessian_structure
        self.prior_precision_method = prior_precision_method
        self.num_samples = num_samples

    def _init_state(self) -> None:
        if self.hessian_structure not in HESSIAN_STRUCTURES:
            raise ConfigError(
                f"laplace: hessian_structure must be one of {', '.join(HESSIAN_STRUCTURES)}, "
                f"got {self.hessian_structure!r}"
            )
        if self.prior_precision_method not in PRIOR_PRECISION_METHODS:
            raise ConfigError(
                f"laplace: prior_precision_method must be one of {', '.join(PRIOR_PRECISION_METHODS)}, "
                f"got {self.prior_precision_method!r}"
            )
        if self.num_samples < 1:
            raise ConfigError(f"laplace: num_samples must be >= 1, got {self.num_samples}")
        super()._init_state()

    def _new_laplace(self) -> Any:
        """An unfitted laplace-torch posterior over the last layer of ``model_``."""
        # Naming the last layer (the backbone convention: the output Linear is model[-1])
        # spares laplace-torch its search with a data batch, which it would otherwise keep in
        # its state (and which could not be saved without pickle).
        last_layer_name = str(len(self.model_) - 1)
        # Imported here: laplace-torch pulls in asdl, whose import costs seconds and emits a
        # torch.jit FutureWarning on every `synthaug` command otherwise.
        from laplace import Laplace

        laplace = Laplace(
            self.model_,
            "classification",
            subset_of_weights="last_layer",
            hessian_structure=self.hessian_structure,
            last_layer_name=last_layer_name,
        )
        # laplace-torch copies the network; only its fit() switches that copy to eval mode,
        # and a loaded posterior must not compute features with dropout or batch statistics.
        laplace.model.eval()
        return laplace

    def _make_base(self) -> UncertaintyMethod:
        """The MAP network is a ``deterministic`` model with the same common hyper-parameters."""
        common = {name: getattr(self, name) for name in self.common_parameter_names()}
        return Deterministic(**common)

    def _fit_prepared(self, train: PreparedData, val: PreparedData) -> None:
        super()._fit_prepared(train, val)  # the MAP network, as ``deterministic`` trains it
        self._fit_posterior(train, val)

    def _fit_from_base(self, base: UncertaintyMethod, train: PreparedData, val: PreparedData) -> None:
        # The fitted deterministic network is the MAP network; laplace-torch fits around a
        # copy of it, so ``base`` is left as it was.
        self.model_ = base.model_
        self.history_ = base.history_
        self._fit_posterior(train, val)

    def _fit_posterior(self, train: PreparedData, val: PreparedData) -> None:
        """Fit the last-layer posterior around ``model_`` and tune its prior precision."""
        self.laplace_ = self._new_laplace()  # around the trained weights
        self.laplace_.fit(self._loader(train))
        with warnings.catch_warnings():
            # laplace-torch always warns that gridsearch's default link is probit; we choose
            # it on purpose (a deterministic predictive makes the search noise-free).
            warnings.filterwarnings("ignore", message="By default `link_approx` is `probit`")
            if self.prior_precision_method == "marglik":
                self.laplace_.optimize_prior_precision(method="marglik", pred_type="glm")
            else:
                self.laplace_.optimize_prior_precision(
                    method="gridsearch",
                    pred_type="glm",
                    link_approx="probit",
                    val_loader=self._loader(val),
                    **GRID,
                )

    def _loader(self, data: PreparedData) -> PreparedLoader:
        # The same (streamed) inputs as training, un-augmented: the curvature is that of the data.
        return data.loader(self.torch_device(), self.batch_size)

    def _predict_log_proba(self, inputs: torch.Tensor) -> torch.Tensor:
        device = self.torch_device()
        chunks = [
            # (S, B, C) logit samples of the GLM predictive; drawn from torch's global
            # generator, which predict_proba seeds with ``seed``.
            self.laplace_.functional_samples(batch.to(device), pred_type="glm", n_samples=self.num_samples)
            for batch in inputs.split(512)
        ]
        return F.log_softmax(torch.cat(chunks, dim=1).float(), dim=-1)

    # -- saving: MAP weights + the posterior quantities, no pickle ---------------------------
    # laplace-torch's ``state_dict()`` holds tensors (mean, prior precision, ...), the
    # Hessian (a tensor, or for "kron" one list of Kronecker factors per parameter) and
    # small Python values (n_data, likelihood, ...). Tensors go to weights.safetensors under
    # ``laplace.``, the small values to config.json; load_state_dict gets them back as they were.

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = super()._state_tensors()
        for key, value in self.laplace_.state_dict().items():
            if isinstance(value, torch.Tensor):
                tensors[STATE_PREFIX + key] = value.detach().contiguous()
            elif isinstance(value, (list, tuple)):
                for i, factors in enumerate(value):
                    for j, factor in enumerate(factors):
                        tensors[f"{STATE_PREFIX}{key}.{i}.{j}"] = factor.detach().contiguous()
        return tensors

    def _json_state(self) -> dict[str, Any]:
        scalars = {
            key: value
            for key, value in self.laplace_.state_dict().items()
            if not isinstance(value, (torch.Tensor, list, tuple))
        }
        return {**super()._json_state(), "laplace": scalars}

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        network = {key: value for key, value in tensors.items() if not key.startswith(STATE_PREFIX)}
        super()._load_state_tensors(network)
        # Completed by _load_json_state, which load_method calls next with the small values.
        self._saved_laplace_tensors = {
            key[len(STATE_PREFIX) :]: value for key, value in tensors.items() if key.startswith(STATE_PREFIX)
        }

    def _load_json_state(self, state: dict[str, Any]) -> None:
        super()._load_json_state(state)
        saved = self.__dict__.pop("_saved_laplace_tensors")
        device = self.torch_device()
        laplace_state: dict[str, Any] = dict(state["laplace"])
        factors: dict[str, dict[int, dict[int, torch.Tensor]]] = {}
        for name, tensor in saved.items():
            key, *position = name.split(".")
            if position:
                factors.setdefault(key, {}).setdefault(int(position[0]), {})[int(position[1])] = tensor.to(device)
            else:
                laplace_state[key] = tensor.to(device)
        for key, by_parameter in factors.items():
            laplace_state[key] = [
                [by_parameter[i][j] for j in sorted(by_parameter[i])] for i in sorted(by_parameter)
            ]
        self.laplace_ = self._new_laplace()
        self.laplace_.load_state_dict(laplace_state)
