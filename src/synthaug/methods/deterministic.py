"""``deterministic``: one network trained by maximum likelihood."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from synthaug.methods.base import UncertaintyMethod, register_method
from synthaug.methods.training import PreparedData, predict_logits, train_model


@register_method("deterministic")
class Deterministic(UncertaintyMethod):
    """Maximum-likelihood training of the backbone's trainable module (S = 1).

    Cross-entropy with SGD/Adam, weight decay and early stopping on the validation NLL; the
    softmax of its logits is the prediction. The baseline every other method is compared with.

    Takes the common hyper-parameters of :class:`~synthaug.methods.base.UncertaintyMethod`.

    Attributes:
        classes_: Class names, index = label.
        backbone_: The fitted :class:`~synthaug.models.Backbone`.
        model_: The trained ``nn.Sequential`` (inputs -> logits).
        history_: :class:`~synthaug.methods.training.TrainingHistory` of the fit.
    """

    def _init_state(self) -> None:
        self.model_ = self.backbone_.build_trainable(len(self.classes_), dropout=self.dropout)
        self.model_.to(self.torch_device())

    def _fit_prepared(self, train: PreparedData, val: PreparedData) -> None:
        self.history_ = train_model(
            self.model_,
            train,
            val,
            self.training_config(),
            seed=self.seed,
            device=self.torch_device(),
            progress=self.progress,
            description=self.key,
        )

    def _predict_log_proba(self, inputs: torch.Tensor) -> torch.Tensor:
        logits = predict_logits(self.model_, inputs, device=self.torch_device())
        return F.log_softmax(logits, dim=-1)[None]
