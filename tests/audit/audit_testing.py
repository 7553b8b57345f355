"""Helpers shared by the audit tests (importable because tests/audit/conftest.py puts this
folder on sys.path)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np

from synthaug.audit import AuditConfig


def _suite_conftest():
    # The session fixtures need the suite's seeded image maker, but fixtures of tests/conftest.py
    # are function-scoped and the file is not importable by name (several folders have a
    # conftest.py), so it is loaded once from its path.
    name = "synthaug_suite_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


PATTERN_CLASSES = _suite_conftest().PATTERN_CLASSES
make_pattern_images = _suite_conftest().make_pattern_images


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
