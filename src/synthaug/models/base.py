"""The backbone interface: a fixed input pipeline plus a trainable module.

A backbone splits an image classifier in two:

1. :meth:`Backbone.prepare` turns an :class:`~synthaug.data.ImageDataset` into one tensor of
   model inputs. It is fixed (nothing in it is trained): for the ``cnn`` backbone it decodes,
   resizes and normalises pixels ``(N, C, H, W)``; for a frozen torchvision model it runs
   the pretrained network once and returns its penultimate features ``(N, D)``, cached on
   disk so that every head, method and seed after the first reuses them.
2. :meth:`Backbone.build_trainable` builds a fresh :class:`torch.nn.Module` that maps those
   inputs to logits ``(N, num_classes)``; this is what an uncertainty method trains.

Conventions every trainable module follows, so that methods can rely on them:

- It is an :class:`torch.nn.Sequential` whose **last element is the** :class:`torch.nn.Linear`
  **that outputs the logits** (last-layer methods such as Laplace or a last-layer BNN find
  it as ``module[-1]``).
- Its stochastic regularisation is :class:`torch.nn.Dropout` modules (what MC dropout keeps
  on at test time); ``dropout=0`` builds the same architecture without dropout.
- Its parameters are initialised from torch's global random state, so callers seed it
  (see :func:`synthaug.methods.training.seeded`).

Backbones whose module is trained from pixels (the ``cnn``, an unfrozen pretrained network)
also say how to read one image (:meth:`Backbone.pixel_decoder`, uint8 pixels at the input
size) and how to turn a batch of those into inputs (:meth:`Backbone.normalize_pixels`, run on
the device). Methods then stream image files through DataLoader workers and augment them per
example, instead of calling :meth:`Backbone.prepare` on the whole set (see
:mod:`synthaug.data.loader`). Frozen backbones use the same pair to extract features.
These methods have defaults, so a backbone that implements only the three abstract ones
still works (in memory, through ``prepare``).

Backbones are found by name through :func:`synthaug.models.make_backbone`; this module holds
only the interface, so the implementations import it and it imports none of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from PIL import Image

    from synthaug.data import ImageDataset
    from synthaug.progress import ProgressCallback


CLASSIC_RECIPE: dict[str, Any] = {
    "optimizer": "adam",
    "weight_decay": 0.0,
    "warmup_fraction": 0.0,
    "backbone_lr_scale": 1.0,
    "gradient_clip_norm": 0.0,
    "ema_decay": 0.0,
    "mixed_precision": False,
    "channels_last": False,
}
"""Optimisation defaults for a network trained from scratch or a head on fixed features."""


class Backbone(ABC):
    """Input pipeline plus trainable-module factory for one kind of classifier.

    Subclasses store their keyword options in ``__init__`` (nothing heavy happens there) and
    return them from :meth:`get_config` so that ``make_backbone(**backbone.get_config())``
    rebuilds an equivalent backbone (this is how saved methods find theirs again).
    """

    #: Registry key or torchvision model name, stored in the config as ``"name"``.
    name: str

    #: Learning rate a method trains this backbone's module with unless told otherwise.
    default_learning_rate: float = 1e-3

    #: Whether the trainable module takes pixels (then :meth:`pixel_decoder` and
    #: :meth:`normalize_pixels` are implemented) rather than the output of :meth:`prepare`.
    trains_on_pixels: bool = False

    def training_defaults(self) -> dict[str, Any]:
        """Values of the optimisation hyper-parameters a method leaves at ``None``.

        Training from scratch or a head on features: Adam without weight decay, warm-up,
        clipping or EMA, in float32 (what synthaug always did). A backbone that is fine-tuned
        returns its own recipe (see :class:`~synthaug.models.torchvision_backbone.TorchvisionBackbone`).
        """
        return dict(CLASSIC_RECIPE)

    def pixel_decoder(self) -> Callable[[Image.Image], torch.Tensor] | None:
        """A picklable callable: one PIL image -> uint8 pixels ``(C, H, W)`` at the input size.

        ``None`` (the default) when the backbone reads images only through :meth:`prepare`.
        """
        return None

    def normalize_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, C, H, W)`` (any device) -> float32 inputs of the network."""
        raise NotImplementedError(f"{type(self).__name__} does not read pixels itself")

    def pixel_array(self) -> tuple[tuple[int, int], str] | None:
        """``((height, width), mode)`` when :meth:`ImageDataset.as_array` gives exactly the
        decoder's pixels, so a small in-memory set can skip decoding (else ``None``)."""
        return None

    @abstractmethod
    def prepare(self, dataset: ImageDataset, *, progress: ProgressCallback | None = None) -> torch.Tensor:
        """Compute the trainable module's inputs for every image of ``dataset``.

        Args:
            dataset: The images (labels are not used).
            progress: Called with progress events of slow work (feature extraction).

        Returns:
            A float32 CPU tensor with one row per image, in dataset order: pixels
            ``(N, C, H, W)`` or features ``(N, D)``.
        """

    @abstractmethod
    def build_trainable(self, num_classes: int, dropout: float | None = None) -> nn.Sequential:
        """Build a freshly initialised module mapping prepared inputs to logits.

        Args:
            num_classes: Number of output logits C.
            dropout: Dropout probability of the module's dropout layers; ``None`` uses the
                backbone's default.

        Returns:
            An :class:`torch.nn.Sequential` mapping ``(N, ...)`` inputs to ``(N, C)`` logits,
            whose last element is the output :class:`torch.nn.Linear`.
        """

    def check_weights(self) -> None:
        """Raise :class:`~synthaug.errors.ConfigError` now if the backbone's weights cannot be
        loaded (a local file of another architecture, an unknown weights name).

        A study calls it on its driver before any generation, so a bad ``weights_path`` costs
        no paid image. The default has no weights to check.
        """

    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable options, including ``"name"``, that rebuild this backbone."""

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({self.name!r}, {options})"
