"""Backbones: a fixed input pipeline plus a trainable module, chosen by name.

>>> from synthaug.models import make_backbone
>>> backbone = make_backbone("cnn")                      # small CNN from scratch
>>> backbone = make_backbone("resnet152", weights="DEFAULT", freeze=True)  # frozen features
>>> inputs = backbone.prepare(dataset)                   # (N, 1, 28, 28) pixels or (N, D) features
>>> module = backbone.build_trainable(num_classes=10)    # what a method trains

See :mod:`synthaug.models.base` for the conventions every trainable module follows.
"""

from synthaug.models.base import BACKBONES, Backbone, make_backbone
from synthaug.models.cnn import CNNBackbone
from synthaug.models.torchvision_backbone import TorchvisionBackbone, torchvision_model_names

__all__ = [
    "BACKBONES",
    "Backbone",
    "CNNBackbone",
    "TorchvisionBackbone",
    "make_backbone",
    "torchvision_model_names",
]
