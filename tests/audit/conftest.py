"""A tiny seeded noisy dataset and its audit, shared by the audit and filter tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from synthaug.audit import AuditResult, audit_dataset
from synthaug.data import ImageDataset

from helpers.audit_testing import FAST_CONFIG, PATTERN_CLASSES, make_pattern_images, noised

N_PER_CLASS = 40
N_FLIPPED = 12  # 10 % of the labels


@dataclass
class NoisyAudit:
    """A dataset with known flipped labels, copies and one test leak, and its audit."""

    data: ImageDataset
    reference: ImageDataset
    test: ImageDataset
    flipped: np.ndarray  # indices whose label was moved to another class
    exact_copy: tuple[int, int]  # (original, copy) within the data
    near_copy: tuple[int, int]  # (original, slightly noised copy) within the data
    leak: tuple[int, int]  # (data index, test index it copies)
    result: AuditResult


@pytest.fixture(scope="session")
def noisy_audit(tmp_path_factory: pytest.TempPathFactory) -> NoisyAudit:
    """120 pattern images with 12 labels flipped, one exact copy, one noised copy and one
    noised copy of a test image; audited against a reference and a test set."""
    images, labels = make_pattern_images(N_PER_CLASS, seed=0)
    test_images, test_labels = make_pattern_images(10, seed=2)
    images = images.copy()
    # Copies keep their class (index 3 and 33 are both class 0, ...), so they are not label noise.
    exact_copy, near_copy, leak = (3, 33), (4, 34), (5, 6)
    images[exact_copy[1]] = images[exact_copy[0]]
    images[near_copy[1]] = noised(images[near_copy[0]], seed=1)
    labels[leak[0]] = test_labels[leak[1]]
    images[leak[0]] = noised(test_images[leak[1]], seed=2)
    rng = np.random.default_rng(0)
    candidates = np.setdiff1d(np.arange(len(labels)), [*exact_copy, *near_copy, leak[0]])
    flipped = np.sort(rng.choice(candidates, N_FLIPPED, replace=False))
    labels[flipped] = (labels[flipped] + rng.integers(1, len(PATTERN_CLASSES), N_FLIPPED)) % len(PATTERN_CLASSES)
    data = ImageDataset.from_arrays(images, labels, PATTERN_CLASSES, name="noisy-patterns")
    reference = ImageDataset.from_arrays(*make_pattern_images(30, seed=1), PATTERN_CLASSES, name="reference")
    test = ImageDataset.from_arrays(test_images, test_labels, PATTERN_CLASSES, name="test")
    out = tmp_path_factory.mktemp("audit")
    result = audit_dataset(data, out, reference=reference, test=test, config=FAST_CONFIG)
    return NoisyAudit(data, reference, test, flipped, exact_copy, near_copy, leak, result)
