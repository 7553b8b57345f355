"""Deterministic ways to take part of a dataset: per-class subsamples and stratified splits."""

from __future__ import annotations

import numpy as np

from synthaug.data.dataset import ImageDataset
from synthaug.errors import ConfigError, DataError


def subsample_per_class(dataset: ImageDataset, n_per_class: int, seed: int) -> ImageDataset:
    """``n_per_class`` images of every class, drawn without replacement, in dataset order.

    Each class is shuffled by its own generator seeded with ``(seed, class index)``, and the
    first ``n_per_class`` are taken, so for one seed a smaller subsample is contained in a
    larger one (learning curves grow by adding images, not by redrawing them).

    Raises:
        DataError: if a class has fewer than ``n_per_class`` images.
    """
    if n_per_class < 1:
        raise ConfigError(f"n_per_class must be at least 1, got {n_per_class}")
    counts = dataset.class_counts()
    short = {name: count for name, count in counts.items() if count < n_per_class}
    if short:
        raise DataError(
            f"{dataset.name}: classes {short} have fewer than n_per_class={n_per_class} images; "
            "lower n_per_class or add images"
        )
    chosen = []
    for label in range(len(dataset.classes)):
        members = np.flatnonzero(dataset.targets == label)
        order = np.random.default_rng([seed, label]).permutation(len(members))
        chosen.append(members[order[:n_per_class]])
    indices = np.sort(np.concatenate(chosen))
    return dataset.subset(indices, name=f"{dataset.name} ({n_per_class}/class, seed {seed})")


def train_val_split(dataset: ImageDataset, val_fraction: float, seed: int) -> tuple[ImageDataset, ImageDataset]:
    """Split into (train, validation), stratified by class, both in dataset order.

    Uses scikit-learn's ``train_test_split(stratify=...)``: the validation set has
    ``ceil(val_fraction * N)`` images with class proportions as close to the dataset's as
    integers allow.

    Raises:
        DataError: if a class has too few images to appear on both sides.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be strictly between 0 and 1, got {val_fraction}")
    try:
        # Imported here: scikit-learn costs ~1.5 s to import, which every CLI command would pay.
        from sklearn.model_selection import train_test_split

        train_indices, val_indices = train_test_split(
            np.arange(len(dataset)), test_size=val_fraction, stratify=dataset.targets, random_state=seed
        )
    except ValueError as error:
        raise DataError(
            f"{dataset.name}: cannot split {len(dataset)} images stratified with val_fraction={val_fraction} "
            f"({error}); add images or change val_fraction"
        ) from error
    return (
        dataset.subset(np.sort(train_indices), name=f"{dataset.name} (train split, seed {seed})"),
        dataset.subset(np.sort(val_indices), name=f"{dataset.name} (val split, seed {seed})"),
    )
