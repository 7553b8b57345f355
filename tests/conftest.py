"""Fixtures shared by the whole test suite. Keep additions small and seeded.

Modules shared by several test folders live in the ``helpers`` package beside this file
(``tests/helpers``), importable as ``helpers.<module>`` through pytest's ``pythonpath``
option (``pyproject.toml``); worker processes inherit it through ``sys.path``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image

from synthaug.data import ImageDataset, fashion_mnist

from helpers.patterns import PATTERN_CLASSES, make_pattern_images

# The test suite must never download a dataset; a missing one is a clear error instead.
os.environ[fashion_mnist.OFFLINE_ENV] = "1"

# Tests run as two xdist workers on a 2-core machine: one intra-op thread each avoids
# oversubscription, which made small convolutions up to 30x slower.
torch.set_num_threads(1)

@pytest.fixture
def make_pattern_dataset() -> Callable[..., ImageDataset]:
    """Factory: ``make_pattern_dataset(n_per_class=30, seed=0, size=28)`` -> ImageDataset."""

    def make(n_per_class: int = 30, seed: int = 0, size: int = 28) -> ImageDataset:
        images, labels = make_pattern_images(n_per_class, seed, size)
        return ImageDataset.from_arrays(images, labels, PATTERN_CLASSES, name=f"patterns-seed{seed}")

    return make


@pytest.fixture
def tiny_arrays_dataset(make_pattern_dataset: Callable[..., ImageDataset]) -> ImageDataset:
    """90 seeded 28x28 grayscale images, 3 learnable classes (:data:`PATTERN_CLASSES`)."""
    return make_pattern_dataset()


@pytest.fixture
def tiny_image_folder(tmp_path: Path) -> Path:
    """The images of ``tiny_arrays_dataset`` as PNGs in ImageFolder layout; returns the root."""
    root = tmp_path / "tiny_folder"
    images, labels = make_pattern_images()
    for index, (image, label) in enumerate(zip(images, labels)):
        class_dir = root / PATTERN_CLASSES[label]
        class_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(class_dir / f"{index:03d}.png")
    return root


@pytest.fixture
def fashion_mnist_available() -> Path:
    """The folder holding Fashion-MNIST (Debian package); skips the test if it is absent."""
    folder = fashion_mnist.SYSTEM_DIRS[0]
    if not all((folder / name).is_file() for files in fashion_mnist.FILES.values() for name in files):
        pytest.skip(f"Fashion-MNIST not installed in {folder} (apt install dataset-fashion-mnist)")
    return folder


# Session fixtures that cost tens of seconds to build (a whole tiny study, with shifted test
# sets or noisy regimes; a two-node Ray cluster): every test that uses one is in the slow
# tier, so `pytest -m "not slow"` never builds them.
SLOW_FIXTURES = frozenset({"tiny_study", "shifted_study", "noise_study", "ray_cluster"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that use a :data:`SLOW_FIXTURES` fixture ``slow``."""
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
