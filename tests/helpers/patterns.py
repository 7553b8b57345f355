"""Seeded pattern images: three learnable classes of bars, the suite's smallest real data."""

from __future__ import annotations

import numpy as np

PATTERN_CLASSES = ["horizontal", "vertical", "diagonal"]


def make_pattern_images(n_per_class: int = 30, seed: int = 0, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """Seeded uint8 ``(N, size, size)`` images of a bright bar on a noisy dark background.

    The bar's orientation is the class (:data:`PATTERN_CLASSES`) and its position varies,
    so a small CNN learns the classes in a few epochs but not from one fixed pixel.

    Returns:
        ``(images, labels)``, classes interleaved (0, 1, 2, 0, 1, 2, ...).
    """
    rng = np.random.default_rng(seed)
    n = n_per_class * len(PATTERN_CLASSES)
    labels = np.arange(n) % len(PATTERN_CLASSES)
    images = rng.normal(30, 15, size=(n, size, size))
    rows, cols = np.mgrid[:size, :size]
    for image, label in zip(images, labels):
        offset = rng.integers(size // 4, 3 * size // 4)
        if label == 0:
            bar = np.abs(rows - offset) <= 1
        elif label == 1:
            bar = np.abs(cols - offset) <= 1
        else:
            bar = np.abs(rows - cols - (offset - size // 2)) <= 1
        image[bar] += rng.uniform(150, 220)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels
