"""Memorisation: generated images that sit closer to a real training image than real images do.

A generator that copies its training data makes near-duplicates of it, and a classifier
trained on them learns nothing new. Two counts per class, both in the pixel space of the
audit's near-copy check (correlation of mean-centred 32x32 grayscale thumbnails,
:mod:`synthaug.audit.duplicates`):

* ``near_copies``: generated images that the audit's check matches to a training image
  (identical pixels, or correlation at least ``min_similarity``, 0.995 by default, a level
  3 in 5,000 real Fashion-MNIST images reach against the test set);
* ``closer_than_real``: generated images whose nearest training image is closer than the
  nearest *other* training image is to all but ``real_quantile`` (5 %) of the real training
  images of that class. Calibrated per class, because simple shapes (trousers) correlate
  highly without being copies. A generator that draws fresh images from the real
  distribution lands there about ``real_quantile`` of the time, so a share well above 5 %
  means copying, not chance.

The nearest training image is searched over every class: a copy is a copy whatever its label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from synthaug.audit.duplicates import DEFAULT_MIN_SIMILARITY, find_copies, thumbnails
from synthaug.data import ImageDataset
from synthaug.errors import DataError

__all__ = ["Memorisation", "memorisation"]

# Query rows compared with all training images at once (1,024 x 60,000 float32 = 245 MB).
_CHUNK = 1024


@dataclass(frozen=True)
class Memorisation:
    """How much of one group of generated images copies the real training images.

    Attributes:
        images: Generated images in the group.
        near_copies: Of those, matched to a training image by the audit's near-copy check.
        closer_than_real: Of those, closer to a training image than real images are to
            each other (see the module docstring).
        real_quantile: Share of real training images that are themselves "closer than real"
            (the level a fresh sample reaches by chance).
    """

    images: int
    near_copies: int
    closer_than_real: int
    real_quantile: float

    @property
    def share(self) -> float:
        """``closer_than_real / images``, the memorisation rate (NaN for an empty group)."""
        return self.closer_than_real / self.images if self.images else float("nan")

    @property
    def near_copy_share(self) -> float:
        """``near_copies / images`` (NaN for an empty group)."""
        return self.near_copies / self.images if self.images else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON values, with the two shares."""
        return {**asdict(self), "share": self.share, "near_copy_share": self.near_copy_share}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Memorisation:
        """The record from :meth:`to_dict`'s output (the derived shares are dropped)."""
        return cls(**{key: data[key] for key in ("images", "near_copies", "closer_than_real", "real_quantile")})

    @classmethod
    def total(cls, groups: list[Memorisation]) -> Memorisation:
        """The counts of several groups (classes) added up."""
        return cls(
            images=sum(group.images for group in groups),
            near_copies=sum(group.near_copies for group in groups),
            closer_than_real=sum(group.closer_than_real for group in groups),
            real_quantile=groups[0].real_quantile if groups else 0.0,
        )


def nearest_similarity(query: torch.Tensor, candidates: torch.Tensor, exclude_self: bool = False) -> np.ndarray:
    """Highest correlation of each query thumbnail with any candidate, float64 ``(len(query),)``.

    With ``exclude_self``, ``query`` is ``candidates[:len(query)]`` re-indexed and each row
    skips its own column (the leave-one-out nearest neighbour).
    """
    best = np.full(len(query), -np.inf)
    for start in range(0, len(query), _CHUNK):
        block = query[start:start + _CHUNK] @ candidates.T
        if exclude_self:
            rows = torch.arange(len(block))
            block[rows, rows + start] = -np.inf
        best[start:start + _CHUNK] = block.max(dim=1).values.double().numpy()
    return best


def memorisation(
    generated: ImageDataset,
    training: ImageDataset,
    *,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    real_quantile: float = 0.05,
    real_sample: int = 1000,
    seed: int = 0,
) -> dict[str, Memorisation]:
    """Memorisation counts of ``generated`` against ``training``, per class of ``generated``.

    Args:
        generated: Generated images; its class names must be classes of ``training``.
        training: The real images the generator (or the classifier) trains on.
        min_similarity: Threshold of the audit's near-copy check.
        real_quantile: Share of real images allowed "closer than real" (sets each class's
            threshold).
        real_sample: Real images per class whose nearest-neighbour correlation sets the
            threshold (a seeded sample; the neighbours are searched among all of them).
        seed: Seeds that sample.

    Returns:
        One :class:`Memorisation` per class name of ``generated``, in class order.

    Raises:
        DataError: a class of ``generated`` has fewer than 2 training images.
    """
    if not 0.0 < real_quantile < 1.0:
        raise DataError(f"real_quantile must be in (0, 1), got {real_quantile}")
    copies = find_copies(generated, training, min_similarity).found
    training_vectors = thumbnails(training)
    generated_similarity = nearest_similarity(thumbnails(generated), training_vectors)
    rng = np.random.default_rng(seed)
    result = {}
    for label, name in enumerate(generated.classes):
        real_label = training.classes.index(name) if name in training.classes else -1
        real_members = np.flatnonzero(training.targets == real_label)
        if len(real_members) < 2:
            raise DataError(f"{training.name}: class {name!r} has {len(real_members)} images; memorisation needs "
                            "at least 2 real images per generated class")
        if len(real_members) > real_sample:
            real_members = np.sort(rng.choice(real_members, size=real_sample, replace=False))
        # Leave-one-out: move the sampled rows to the front so that row i's own column is i.
        order = np.concatenate([real_members, np.setdiff1d(np.arange(len(training)), real_members)])
        reordered = training_vectors[torch.from_numpy(order)]
        real_similarity = nearest_similarity(reordered[:len(real_members)], reordered, exclude_self=True)
        threshold = np.quantile(real_similarity, 1.0 - real_quantile)
        members = generated.targets == label
        result[name] = Memorisation(
            images=int(members.sum()),
            near_copies=int(copies[members].sum()),
            closer_than_real=int((generated_similarity[members] > threshold).sum()),
            real_quantile=real_quantile,
        )
    return result
