"""``ensemble``: M independently seeded networks (deep ensembles)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthaug.errors import ConfigError
from synthaug.methods.base import UncertaintyMethod, register_method
from synthaug.methods.training import PreparedData, TrainingHistory, predict_logits, seeded, train_model


@register_method("ensemble")
class DeepEnsemble(UncertaintyMethod):
    """Deep ensemble: ``num_members`` networks from different random initialisations and
    batch orders, each trained by maximum likelihood on the same data; each member's softmax
    is one predictive sample (S = M).

    Member seeds are spawned from ``seed`` with :class:`numpy.random.SeedSequence`, so
    ensembles with different seeds share no member.

    Args:
        num_members: Ensemble size M.
        **common: The hyper-parameters of :class:`~synthaug.methods.base.UncertaintyMethod`.

    Attributes:
        model_: ``nn.ModuleList`` of the M trained members.
        histories_: One :class:`~synthaug.methods.training.TrainingHistory` per member.

    References:
        Lakshminarayanan, Pritzel & Blundell, "Simple and Scalable Predictive Uncertainty
        Estimation using Deep Ensembles", NeurIPS 2017.
    """

    def __init__(self, *, num_members: int = 5, **common) -> None:
        super().__init__(**common)
        self.num_members = num_members

    def member_seeds(self) -> list[int]:
        """The seed of each member, derived from ``seed``."""
        children = np.random.SeedSequence(self.seed).spawn(self.num_members)
        return [int(child.generate_state(1)[0]) for child in children]

    def _init_state(self) -> None:
        if self.num_members < 1:
            raise ConfigError(f"ensemble: num_members must be >= 1, got {self.num_members}")
        members = []
        for member_seed in self.member_seeds():
            with seeded(member_seed):
                members.append(self.backbone_.build_trainable(len(self.classes_), dropout=self.dropout))
        self.model_ = nn.ModuleList(members).to(self.torch_device())

    def _fit_prepared(self, train: PreparedData, val: PreparedData) -> None:
        self.histories_ = [
            train_model(
                member,
                train,
                val,
                self.training_config(),
                seed=member_seed,
                device=self.torch_device(),
                progress=self.progress,
                description=f"{self.key} member {index + 1}/{self.num_members}",
            )
            for index, (member, member_seed) in enumerate(zip(self.model_, self.member_seeds()))
        ]

    def _predict_log_proba(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [F.log_softmax(predict_logits(m, inputs, device=self.torch_device()), dim=-1) for m in self.model_]
        )

    def _json_state(self) -> dict[str, Any]:
        return {"histories": [history.to_dict() for history in getattr(self, "histories_", [])]}

    def _load_json_state(self, state: dict[str, Any]) -> None:
        self.histories_ = [TrainingHistory(**history) for history in state.get("histories", [])]

    def training_histories(self) -> list[TrainingHistory]:
        return list(getattr(self, "histories_", []))
