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

Backbones are found by name through :func:`synthaug.models.make_backbone`; this module holds
only the interface, so the implementations import it and it imports none of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from synthaug.data import ImageDataset
    from synthaug.progress import ProgressCallback


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

    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable options, including ``"name"``, that rebuild this backbone."""

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({self.name!r}, {options})"
