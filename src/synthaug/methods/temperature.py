"""``temperature``: temperature scaling fitted on held-out data, on top of any method."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from synthaug.errors import ConfigError, TrainingError
from synthaug.methods.base import UncertaintyMethod, make_method, register_method
from synthaug.methods.training import PreparedData, TrainingHistory

# Log-probabilities below this are treated as this value, so that a sample that puts an
# exact zero on a class (log = -inf) keeps finite gradients with respect to the temperature.
_LOG_PROBA_FLOOR = -1e4


def temperature_scale(log_proba: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """Rescale each predictive sample by a temperature: ``log_softmax(log p_s / T)``.

    Since ``log p_s = z_s - logsumexp(z_s)`` for logits ``z_s``, this equals
    ``log_softmax(z_s / T)``: Guo et al.'s temperature scaling applied to every sample, which
    needs only the samples' log-probabilities and so works on top of any method.

    Args:
        log_proba: ``(S, N, C)`` log-probabilities.
        temperature: T > 0 (T > 1 softens, T < 1 sharpens).

    Returns:
        ``(S, N, C)`` rescaled log-probabilities.
    """
    return F.log_softmax(log_proba.clamp_min(_LOG_PROBA_FLOOR) / temperature, dim=-1)


def mixture_nll(log_proba: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean NLL of the sample-averaged predictive ``mean_s p_s``: ``(S, N, C)``, ``(N,)`` -> scalar."""
    log_mean = torch.logsumexp(log_proba, dim=0) - math.log(log_proba.shape[0])
    return F.nll_loss(log_mean, targets)


def fit_temperature(log_proba: torch.Tensor, targets: torch.Tensor, *, max_iter: int = 100) -> float:
    """The temperature minimising the NLL of the averaged, rescaled predictive.

    Optimised over ``log T`` (so T stays positive) with L-BFGS, in float64.

    Args:
        log_proba: ``(S, N, C)`` held-out log-probabilities of the uncalibrated method.
        targets: ``(N,)`` held-out labels.
        max_iter: L-BFGS iterations.

    Returns:
        The fitted temperature T.

    References:
        Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural Networks", ICML 2017.
    """
    log_proba = log_proba.detach().double().cpu()
    targets = targets.cpu()
    log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_temperature], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = mixture_nll(temperature_scale(log_proba, log_temperature.exp()), targets)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    temperature = float(log_temperature.detach().exp())
    if not math.isfinite(temperature):
        raise TrainingError("temperature scaling diverged; the validation predictions are degenerate")
    return temperature


@register_method("temperature")
class TemperatureScaling(UncertaintyMethod):
    """Temperature scaling (Guo et al. 2017) on top of any other method.

    The base method is trained as usual (early-stopping on the validation set); then a single
    temperature T is fitted by L-BFGS to minimise the NLL of the validation predictions, and
    every predictive sample is rescaled as in :func:`temperature_scale`. With the default
    ``base="deterministic"`` this is exactly Guo et al.'s method; with ``base="ensemble"``
    (or ``mc-dropout``, ``bnn``, ...) each sample is rescaled by the shared T fitted on the
    sample-averaged predictive. Accuracy is unchanged for S = 1.

    Args:
        base: Key of the method to calibrate (any registered method but ``temperature``).
        base_options: The base method's own hyper-parameters (e.g. ``{"num_members": 5}``);
            the common ones (epochs, seed, backbone, ...) are taken from this method.
        max_iter: L-BFGS iterations of the temperature fit.
        **common: The hyper-parameters of :class:`~synthaug.methods.base.UncertaintyMethod`.

    Attributes:
        base_method_: The fitted base method.
        temperature_: The fitted temperature T.

    References:
        Guo, Pleiss, Sun & Weinberger, "On Calibration of Modern Neural Networks", ICML 2017.
    """

    recalibrates = True

    def __init__(
        self,
        *,
        base: str = "deterministic",
        base_options: dict[str, Any] | None = None,
        max_iter: int = 100,
        **common,
    ) -> None:
        super().__init__(**common)
        self.base = base
        self.base_options = base_options
        self.max_iter = max_iter

    def _make_base(self) -> UncertaintyMethod:
        """The method to calibrate, with this method's common hyper-parameters (unfitted)."""
        if self.base == self.key:
            raise ConfigError("temperature: base must be another method, not 'temperature'")
        options = dict(self.base_options or {})
        shared = sorted(set(options) & set(self.common_parameter_names()))
        if shared:
            raise ConfigError(
                f"temperature: set {', '.join(shared)} on the temperature method itself, not in base_options"
            )
        common = {name: getattr(self, name) for name in self.common_parameter_names()}
        return make_method(self.base, **common, **options)

    def _init_state(self) -> None:
        self.base_method_ = self._make_base()
        self.base_method_.classes_ = self.classes_
        self.base_method_.backbone_ = self.backbone_
        self.base_method_._init_state()
        self.temperature_ = 1.0

    def _base_options(self) -> dict[str, Any]:
        return dict(self.base_options or {})

    def _fit_prepared(self, train: PreparedData, val: PreparedData) -> None:
        self.base_method_._fit_prepared(train, val)
        self._calibrate(val)

    def _fit_from_base(self, base: UncertaintyMethod, train: PreparedData, val: PreparedData) -> None:
        self.base_method_ = base
        self._calibrate(val)

    def _calibrate(self, val: PreparedData) -> None:
        """Fit ``temperature_`` to the fitted base's validation predictions."""
        val_log_proba = self.base_method_._predict_prepared(val)
        self.temperature_ = fit_temperature(val_log_proba, val.targets, max_iter=self.max_iter)

    def _predict_log_proba(self, inputs: torch.Tensor) -> torch.Tensor:
        return temperature_scale(self.base_method_._predict_log_proba(inputs), self.temperature_)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"base.{k}": v for k, v in self.base_method_._state_tensors().items()}
        tensors["temperature"] = torch.tensor([self.temperature_], dtype=torch.float64)
        return tensors

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.temperature_ = float(tensors["temperature"][0])
        base = {k.removeprefix("base."): v for k, v in tensors.items() if k.startswith("base.")}
        self.base_method_._load_state_tensors(base)

    def _json_state(self) -> dict[str, Any]:
        return {"temperature": self.temperature_, "base": self.base_method_._json_state()}

    def _load_json_state(self, state: dict[str, Any]) -> None:
        self.base_method_._load_json_state(state.get("base", {}))

    def training_histories(self) -> list[TrainingHistory]:
        return self.base_method_.training_histories() if hasattr(self, "base_method_") else []

    def fitted_summary(self) -> dict[str, float]:
        return {"temperature": self.temperature_} if hasattr(self, "temperature_") else {}
