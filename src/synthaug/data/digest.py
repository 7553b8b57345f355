"""The content digest of an image's pixels: what counts as "the same image" everywhere.

Two files that decode to the same pixels (a PNG copy of a test image, the same array saved
twice) get the same digest. The leakage guard of guided generation, the audit's exact-copy
check, the caption cache and retrieval's copy check all use this one function, so they agree on
what a copy is.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from synthaug.data.dataset import ImageDataset

__all__ = ["pixel_digests", "pixel_sha256"]


def pixel_sha256(image: Image.Image) -> str:
    """sha256 hex digest of an image's decoded RGB pixels and size."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}\n".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def pixel_digests(dataset: ImageDataset) -> list[str]:
    """:func:`pixel_sha256` of each image, in dataset order."""
    return [pixel_sha256(dataset[index][0]) for index in range(len(dataset))]
