"""Backbones: a fixed input pipeline plus a trainable module, chosen by name.

>>> from synthaug.models import make_backbone
>>> backbone = make_backbone("cnn")                      # small CNN from scratch
>>> backbone = make_backbone("resnet152", weights="DEFAULT", freeze=True)  # frozen features
>>> inputs = backbone.prepare(dataset)                   # (N, 1, 28, 28) pixels or (N, D) features
>>> module = backbone.build_trainable(num_classes=10)    # what a method trains

The registry maps each key to ``"module:Class"`` and imports the module only when the backbone
is built, as the generator backends do: :mod:`synthaug.models.base` holds the interface, each
implementation imports it, and nothing imports the implementations but :func:`backbone_class`.
Any torchvision classification model name (``resnet18``, ``resnet152``, ``efficientnet_b0``,
``vit_b_16``, ...) is a backbone too, built by the ``torchvision`` entry, and so is any timm
model written ``timm:MODEL`` (``timm:resnetv2_152x2_bit``), built by the ``timm`` entry.

See :mod:`synthaug.models.base` for the conventions every trainable module follows.
"""

from __future__ import annotations

import importlib
from typing import Any

from synthaug.errors import ConfigError
from synthaug.models.base import Backbone
from synthaug.registry import Registry

BACKBONES: Registry[str] = Registry("backbone")
"""Backbone classes by name, as ``"module:Class"``."""
BACKBONES.register("cnn")("synthaug.models.cnn:CNNBackbone")
BACKBONES.register("torchvision")("synthaug.models.torchvision_backbone:TorchvisionBackbone")
BACKBONES.register("timm")("synthaug.models.timm_backbone:TimmBackbone")

TIMM_PREFIX = "timm:"
"""``timm:MODEL`` names any timm model (see :mod:`synthaug.models.timm_backbone`)."""


def backbone_class(key: str) -> type[Backbone]:
    """Import and return the backbone class registered under ``key``.

    Raises:
        ConfigError: Unknown key.
    """
    module_name, class_name = BACKBONES.get(key).split(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_backbone(name: str, **options: Any) -> Backbone:
    """Build a backbone by name.

    Args:
        name: A key of :data:`BACKBONES` (``"cnn"``) or the name of any torchvision
            classification model (``"resnet18"``, ``"resnet152"``, ``"vit_b_16"``, ...; see
            :class:`~synthaug.models.torchvision_backbone.TorchvisionBackbone`), or
            ``timm:MODEL`` for any timm model (``timm:resnet50.a1_in1k``; see
            :class:`~synthaug.models.timm_backbone.TimmBackbone`).
        **options: Keyword options of that backbone class.

    Returns:
        The backbone (cheap: models and features are built lazily).

    Raises:
        ConfigError: The name is unknown or an option is not accepted.
    """
    if name.startswith(TIMM_PREFIX):
        cls, arguments = backbone_class("timm"), {"model": name.removeprefix(TIMM_PREFIX), **options}
    elif name in BACKBONES and name not in ("torchvision", "timm"):
        cls, arguments = backbone_class(name), dict(options)
    else:
        cls, arguments = backbone_class("torchvision"), {"model": name, **options}
        if name not in cls.model_names():
            known = ", ".join(key for key in BACKBONES.keys() if key not in ("torchvision", "timm"))
            raise ConfigError(
                f"unknown backbone {name!r}; choose {known}, a torchvision classification model "
                "name such as resnet18, resnet152, efficientnet_b0 or vit_b_16, or timm:MODEL"
            )
    try:
        return cls(**arguments)
    except TypeError as error:
        raise ConfigError(f"backbone {name!r}: {error}") from error


__all__ = ["BACKBONES", "Backbone", "backbone_class", "make_backbone"]
