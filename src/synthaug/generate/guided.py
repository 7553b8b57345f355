"""Real images as starting points of generation: SDEdit / image-to-image / image edits.

A guided run gives each class a handful of real images; slot ``j`` of a class becomes a
variant of that class's real image ``j mod n`` (``n`` real images), at a strength drawn per
image (seeded) from the given list. A strength ``s`` in ``(0, 1]`` is how much of the
diffusion the real image goes through: noised to ``t = s T`` and denoised towards its
class (``s = 1`` is plain text-to-image, ``s -> 0`` gives the real image back).

Provenance: every source image is identified by its file name and the sha256 of its file's
bytes (of its pixels, for an in-memory built-in dataset), so a guided image can be traced
to its source, and a study can refuse sources that belong to its test or validation sets
(:func:`pixel_sha256` compares content whatever the file format).

References:
    Meng et al. (2022), "SDEdit: Guided Image Synthesis and Editing with Stochastic
    Differential Equations".
    He et al. (2023), "Is Synthetic Data from Generative Models Ready for Image Recognition?"
    Trabucco et al. (2024), "Effective Data Augmentation With Diffusion Models" (DA-Fusion).
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthaug.data import ImageDataset, load_dataset
from synthaug.data.digest import pixel_sha256
from synthaug.errors import ConfigError, DataError
from synthaug.fileio import sha256_file
from synthaug.generate.backends.base import InitImage


def parse_strengths(value: str | float | Sequence[float]) -> tuple[float, ...]:
    """Strengths from ``0.5``, ``[0.5, 0.75]`` or the text ``"0.5,0.75"``.

    Raises:
        ConfigError: A value is not a number in ``(0, 1]``.
    """
    if isinstance(value, str):
        try:
            values = [float(part) for part in value.split(",") if part.strip()]
        except ValueError as error:
            raise ConfigError(f"--strength {value!r}: expected numbers in (0, 1], e.g. 0.5,0.75") from error
    elif isinstance(value, int | float) and not isinstance(value, bool):
        values = [float(value)]
    else:
        values = [float(v) for v in value]
    if not values or any(not 0 < v <= 1 for v in values):
        raise ConfigError(f"strength must be one or more numbers in (0, 1] (1 = text-to-image), got {value!r}")
    return tuple(values)


@dataclass(frozen=True)
class Guidance:
    """The real images a guided run starts from, and the strengths it draws from.

    Attributes:
        source: Name of the real dataset (spec or folder).
        images: Per class label, its real images in dataset order.
        strengths: Strengths drawn per image; empty for a backend without a strength
            (OpenAI edits and variations).
    """

    source: str
    images: Mapping[str, tuple[InitImage, ...]]
    strengths: tuple[float, ...] = ()

    def choose(self, label: str, index: int, seed: int) -> tuple[InitImage, float | None]:
        """Source image and strength of slot ``index`` of ``label``.

        Slot ``j`` uses real image ``j mod n``; the strength is drawn from the slot's seed,
        so a rerun or resume draws the same one.
        """
        sources = self.images[label]
        strength = random.Random(seed).choice(self.strengths) if self.strengths else None
        return sources[index % len(sources)], strength

    def variant(self, label: str, index: int) -> int:
        """Which variant of its source image slot ``index`` is (0 for the first)."""
        return index // len(self.images[label])

    def content_hashes(self) -> set[str]:
        """Pixel digests of every source image (see :func:`pixel_sha256`)."""
        return {image.pixels_sha256 for images in self.images.values() for image in images}

    def to_dict(self) -> dict[str, Any]:
        """What identifies the guidance in ``generation.json``: a changed source set or
        strength list is another run's settings."""
        listing = hashlib.sha256()
        for label in sorted(self.images):
            for image in self.images[label]:
                listing.update(f"{label}\x00{image.sha256}\n".encode())
        return {
            "source": self.source,
            "strengths": list(self.strengths),
            "images_per_class": {label: len(images) for label, images in self.images.items()},
            "images_sha256": listing.hexdigest(),
        }


def load_guidance(
    real: str | os.PathLike[str] | ImageDataset,
    classes: Sequence[str],
    strengths: str | float | Sequence[float] | None = None,
) -> Guidance:
    """Read the real images of ``classes`` from a dataset (matched by class name).

    Args:
        real: A dataset, a built-in spec (``fashion-mnist:train[50000:]``) or a folder.
        classes: The classes to generate; each must have at least one real image.
        strengths: One strength or several (see :func:`parse_strengths`); ``None`` for a
            backend without strengths.

    Raises:
        ConfigError: A class has no real image in ``real``, or a strength is out of range.
        DataError: ``real`` cannot be read.
    """
    dataset = real if isinstance(real, ImageDataset) else load_dataset(real)
    parsed = parse_strengths(strengths) if strengths is not None else ()
    missing = [label for label in classes if label not in dataset.classes]
    if missing:
        raise ConfigError(
            f"--init-images {dataset.name}: no real images of class(es) {', '.join(map(repr, missing))} "
            f"(it has: {', '.join(dataset.classes)}); classes are matched by name"
        )
    files = dataset.files
    records = dataset.records
    images: dict[str, tuple[InitImage, ...]] = {}
    for label in classes:
        positions = np.flatnonzero(dataset.targets == dataset.classes.index(label))
        if len(positions) == 0:
            raise ConfigError(f"--init-images {dataset.name}: class {label!r} has no images; add some")
        images[label] = tuple(_init_image(dataset, int(p), files[p], records[p]) for p in positions)
    return Guidance(source=dataset.name, images=images, strengths=parsed)


def _init_image(dataset: ImageDataset, position: int, path: Any, record: Mapping[str, Any]) -> InitImage:
    image, _ = dataset[position]
    pixels = pixel_sha256(image)
    if path is not None:
        try:
            file_hash = sha256_file(path)
        except OSError as error:
            raise DataError(f"{path}: cannot read the file ({error}); restore it") from error
        return InitImage(image=image, file_name=str(record.get("file_name") or path), sha256=file_hash,
                         pixels_sha256=pixels)  # fmt: skip
    name = f"{record.get('source', dataset.name)}[{record.get('index', position)}]"
    return InitImage(image=image, file_name=name, sha256=pixels, pixels_sha256=pixels)


def check_no_leakage(guidance_hashes: set[str], held_out: Mapping[str, ImageDataset]) -> None:
    """Refuse guidance from images that are also in a held-out set (by pixel content).

    Args:
        guidance_hashes: Pixel digests of the guidance images (:meth:`Guidance.content_hashes`).
        held_out: Name -> dataset of the sets a study evaluates on (test, validation).

    Raises:
        ConfigError: Naming the held-out set and how many guidance images it shares.
    """
    for name, dataset in held_out.items():
        shared = guidance_hashes & held_out_hashes(dataset)
        if shared:
            raise ConfigError(
                f"generate.init_images: {len(shared)} guidance image(s) are also in the {name} set "
                f"{dataset.name} (same pixels); guide only from training images"
            )


def held_out_hashes(dataset: ImageDataset) -> set[str]:
    """Pixel digests of every image of ``dataset`` (see :func:`pixel_sha256`)."""
    return {pixel_sha256(dataset[position][0]) for position in range(len(dataset))}
