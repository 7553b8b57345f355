"""The study grid: its units, and the method each one trains.

A :class:`Unit` is one point of regimes x sizes x backbones x methods x seeds. Its id is its
group's id (:func:`synthaug.study.records.make_group_id`) plus the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import synthaug
from synthaug.study.config import BackboneSpec, MethodSpec, Regime, StudyConfig
from synthaug.study.records import make_group_id

if TYPE_CHECKING:  # the methods package pulls in torch; a unit builds its method when it runs
    from synthaug.data import ImageDataset
    from synthaug.methods import UncertaintyMethod

__all__ = ["Unit", "make_unit_method", "model_description", "plan_units", "unit_method_params"]


@dataclass(frozen=True)
class Unit:
    """One point of the study grid: a training set, a model and a seed."""

    regime: Regime
    size: int
    backbone: BackboneSpec
    method: MethodSpec
    seed: int

    @property
    def group_id(self) -> str:
        """Id of the unit's group (every seed of the same regime, size, backbone and method)."""
        return make_group_id(self.regime.name, self.size, self.backbone.name, self.method.name)

    @property
    def unit_id(self) -> str:
        """Readable id, unique within a study."""
        return f"{self.group_id}/seed={self.seed}"


def plan_units(config: StudyConfig) -> list[Unit]:
    """The study grid in run order: for each regime and size, backbones, methods, seeds.

    Seeds are the innermost loop so that a partial run already has every seed of the first
    groups, which is what the statistics need first.
    """
    return [
        Unit(regime, size, backbone, method, seed)
        for regime in config.regimes
        for size in regime.sizes
        for backbone in config.backbones
        for method in config.regime_methods(regime, size)
        for seed in config.seeds
    ]


def unit_method_params(config: StudyConfig, unit: Unit) -> dict[str, Any]:
    """The unit's method hyper-parameters: the study's, then the method's, then the regime's."""
    params = {**config.method_params, **unit.method.params, **(unit.regime.method_params or {})}
    if unit.regime.mix is not None and unit.regime.mix.synthetic_probability is not None:
        # The regime's share is carried by per-set sample weights (see `training_set`); drawing
        # by them, rather than weighting losses, makes it a per-batch mixing probability.
        params["weighted_sampling"] = True
    return params


def model_description(config: StudyConfig, unit: Unit, train: ImageDataset, val: ImageDataset) -> dict[str, Any]:
    """What a unit's trained model depends on; its content key addresses the model in the cache
    (shared by a study's units and a targeted regime's rounds, so equal trainings are shared)."""
    return {
        "synthaug_version": synthaug.__version__,
        "train": train.fingerprint(),
        "val": val.fingerprint(),
        "method": unit.method.key,
        "params": unit_method_params(config, unit),
        "backbone": unit.backbone.model_dump(mode="json"),
        "seed": unit.seed,
    }


def make_unit_method(config: StudyConfig, unit: Unit) -> UncertaintyMethod:
    """The unit's (unfitted) method.

    Raises:
        ConfigError: A hyper-parameter is unknown or invalid.
    """
    from synthaug.methods import make_method

    options: dict[str, Any] = dict(unit_method_params(config, unit))
    options["backbone"] = unit.backbone.name
    if unit.backbone.params:
        options["backbone_options"] = dict(unit.backbone.params)
    # The study reports progress per unit, not per training run.
    return make_method(unit.method.key, seed=unit.seed, device=config.device, **options)
