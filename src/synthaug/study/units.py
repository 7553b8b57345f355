"""The study grid: its units, and the method each one trains.

A :class:`Unit` is one point of regimes x sizes x backbones x methods x seeds. Its id is its
group's id (:func:`synthaug.study.records.make_group_id`) plus the seed.

A unit's model is cached under the hash of what it depends on (:func:`model_description`):
its data and its *resolved* parameters (:func:`resolved_params`: every hyper-parameter of the
constructed method with its defaults filled in, the backbone's full config, the training
config, the torch threads), not the package version. A release that changes no default thus
reuses every cached model, and one that changes a default retrains exactly the units whose
resolved parameters moved.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from synthaug.study.cache import content_key
from synthaug.study.config import BackboneSpec, MethodSpec, Regime, StudyConfig
from synthaug.study.records import make_group_id

if TYPE_CHECKING:  # the methods package pulls in torch; a unit builds its method when it runs
    from synthaug.data import ImageDataset
    from synthaug.methods import UncertaintyMethod

__all__ = [
    "Unit",
    "make_unit_base",
    "make_unit_method",
    "method_identity",
    "model_description",
    "params_key",
    "plan_units",
    "resolved_params",
    "unit_method_params",
]


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
    """The unit's method hyper-parameters: the study's, then the method's, then the regime's
    (:meth:`~synthaug.study.config.StudyConfig.method_params_for`, ``augment`` included)."""
    params = config.method_params_for(unit.regime, unit.method)
    if unit.regime.mix is not None and unit.regime.mix.synthetic_probability is not None:
        # The regime's share is carried by per-set sample weights (see `training_set`); drawing
        # by them, rather than weighting losses, makes it a per-batch mixing probability.
        params["weighted_sampling"] = True
    return params


def method_identity(method: UncertaintyMethod) -> dict[str, Any]:
    """What a model trained by ``method`` depends on besides its data: the method's key, every
    hyper-parameter with its default filled in (``get_params()``, without the run-time
    ``device``/``progress``), the backbone's full config and the resolved training config.

    Keying on these rather than on the package version lets a cache outlive a release that
    changes no default, and a changed default retrain only what it touches. Settings left at
    ``None`` (unset: off, or resolved into the training config) are left out, so that a
    release adding an optional setting (``max_steps``) keeps the keys of models that do not use it.
    """
    from synthaug.methods.base import RUNTIME_PARAMETERS
    from synthaug.models import make_backbone

    params = {
        name: value
        for name, value in method.get_params().items()
        if name not in RUNTIME_PARAMETERS and value is not None
    }
    backbone = make_backbone(method.backbone, **(method.backbone_options or {}))
    training = dataclasses.asdict(method.training_config())
    training = {name: value for name, value in training.items() if value is not None}
    return {"method": method.key, "params": params, "backbone": backbone.get_config(), "training": training}


def resolved_params(config: StudyConfig, unit: Unit) -> dict[str, Any]:
    """A unit's resolved parameters: :func:`method_identity` of its method and the torch
    threads it runs with (the float reduction order follows the thread count)."""
    return {**method_identity(make_unit_method(config, unit)), "threads": config.threads}


def params_key(config: StudyConfig, unit: Unit) -> str:
    """Hash of :func:`resolved_params`, stored in each results row: a resumed run whose
    parameters for a finished unit differ (a release changed a default) is refused rather than
    mixing two sets of defaults in one log."""
    return content_key(resolved_params(config, unit))


def model_description(config: StudyConfig, unit: Unit, train: ImageDataset, val: ImageDataset) -> dict[str, Any]:
    """What a unit's trained model depends on; its content key addresses the model in the cache
    (shared by a study's units and a targeted regime's rounds, so equal trainings are shared).

    The package version is not part of it (it is recorded in the model's saved config): see
    the module docstring.
    """
    return {"train": train.fingerprint(), "val": val.fingerprint(), **resolved_params(config, unit)}


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


def make_unit_base(config: StudyConfig, unit: Unit) -> UncertaintyMethod | None:
    """The (unfitted) method whose trained model a post-hoc unit (``temperature``, ``laplace``)
    starts from, as a unit of that base method would build it; ``None`` for a method that
    trains from scratch, or whose base cannot be named from the unit's parameters."""
    from synthaug.methods import METHODS, make_method

    base = METHODS.get(unit.method.key).posthoc_base(unit_method_params(config, unit))
    if base is None:
        return None
    options: dict[str, Any] = {**base.params, "backbone": unit.backbone.name}
    if unit.backbone.params:
        options["backbone_options"] = dict(unit.backbone.params)
    return make_method(base.key, seed=unit.seed, device=config.device, **options)
