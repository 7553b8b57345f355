"""Helpers shared by the audit tests: fast audit settings, seeded noise, folder digests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from synthaug.audit import AuditConfig

from helpers.patterns import PATTERN_CLASSES, make_pattern_images

__all__ = ["FAST_CONFIG", "PATTERN_CLASSES", "make_pattern_images", "noised", "tree_digest"]


def noised(image: np.ndarray, seed: int, sigma: float = 3.0) -> np.ndarray:
    """A copy of a uint8 image with slight seeded Gaussian noise."""
    noise = np.random.default_rng(seed).normal(0, sigma, image.shape)
    return np.clip(np.rint(image.astype(float) + noise), 0, 255).astype(np.uint8)


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` by relative path (to show a folder is untouched)."""
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


# Fast settings: three folds of a single network learn the bar patterns in a few epochs.
FAST_CONFIG = AuditConfig(folds=3, method="deterministic", method_options={"batch_size": 32}, epochs=8,
                          report_per_class=4)
