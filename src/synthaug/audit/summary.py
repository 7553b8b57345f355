"""Per-class summary of an audit: noise rate, copies, and diversity against the real data.

Diversity is the mean pairwise Euclidean distance between the feature vectors of the
images of one class (on a seeded sample of at most ``diversity_sample`` images per class).
Features are the reference model's penultimate-layer activations when a reference model
with a plain ``nn.Sequential`` network exists (a space trained on real data, where distance
means "looks different to a classifier"), else the centred 32x32 thumbnails used for
near-duplicates. Generated data that covers less of a class than real data shows as a
``diversity_ratio`` below 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from synthaug.audit.duplicates import thumbnails
from synthaug.data import ImageDataset

CLASS_COLUMNS = [
    "class",
    "images",
    "label_issues",
    "estimated_noise_rate",
    "mean_score",
    "cv_accuracy",
    "reference_agreement",
    "duplicates",
    "reference_copies",
    "test_leaks",
    "diversity",
    "reference_diversity",
    "diversity_ratio",
]
"""Columns of ``classes.csv``, in order."""


def feature_network(model: Any) -> nn.Module | None:
    """The network minus its output layer, if ``model.model_`` is an ``nn.Sequential``
    (or an ensemble of them: the first member), else ``None``.

    Relies on the backbone convention that the last element is the output ``nn.Linear``
    (see :mod:`synthaug.models.base`).
    """
    network = getattr(model, "model_", None)
    if isinstance(network, nn.ModuleList) and len(network) and isinstance(network[0], nn.Sequential):
        network = network[0]
    if isinstance(network, nn.Sequential) and isinstance(network[-1], nn.Linear):
        return network[:-1]
    return None


def feature_vectors(dataset: ImageDataset, model: Any | None) -> tuple[np.ndarray, str]:
    """Features of every image and what they are.

    Returns:
        ``(features float32 (N, D), description)``; see the module docstring.
    """
    network = None if model is None else feature_network(model)
    if network is None:
        return thumbnails(dataset).numpy(), "32x32 centred grayscale thumbnails"
    inputs = model.backbone_.prepare(dataset)
    device = next(network.parameters()).device
    was_training = network.training
    network.eval()
    with torch.no_grad():
        features = torch.cat([network(batch.to(device)).cpu() for batch in inputs.split(512)])
    network.train(was_training)
    return features.flatten(1).numpy(), "penultimate layer of the reference model"


def mean_pairwise_distance(features: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of distinct rows of ``features (n, D)``; NaN if n < 2."""
    if len(features) < 2:
        return float("nan")
    vectors = torch.from_numpy(np.asarray(features, dtype=np.float64))
    distances = torch.pdist(vectors)
    return float(distances.mean())


def class_diversity(features: np.ndarray, labels: np.ndarray, num_classes: int, sample: int, seed: int) -> np.ndarray:
    """Mean pairwise distance of each class's features (seeded sample of at most ``sample``).

    Returns:
        float64 ``(num_classes,)``, NaN for classes with fewer than 2 images.
    """
    rng = np.random.default_rng(seed)
    diversity = np.full(num_classes, np.nan)
    for label in range(num_classes):
        members = np.flatnonzero(labels == label)
        if len(members) > sample:
            members = np.sort(rng.choice(members, size=sample, replace=False))
        diversity[label] = mean_pairwise_distance(features[members])
    return diversity


def class_rows(
    data: ImageDataset,
    per_image: dict[str, np.ndarray],
    noise_rate: np.ndarray,
    diversity: np.ndarray,
    reference_diversity: np.ndarray | None,
) -> list[dict[str, Any]]:
    """One row per class of ``data`` with the :data:`CLASS_COLUMNS`.

    Args:
        data: The audited data.
        per_image: ``(N,)`` arrays: ``score``, ``label_issue``, ``cv_correct``,
            ``reference_correct`` (optional), ``duplicate``, ``reference_copy``, ``leakage``.
        noise_rate: ``(C,)`` confident-learning noise rate per class.
        diversity: ``(C,)`` mean pairwise distance per class.
        reference_diversity: ``(C,)`` the same on the reference images, or ``None``.
    """
    rows = []
    for label, name in enumerate(data.classes):
        members = data.targets == label
        reference = None if reference_diversity is None else float(reference_diversity[label])
        ratio = None
        if reference is not None and np.isfinite(reference) and reference > 0 and np.isfinite(diversity[label]):
            ratio = float(diversity[label] / reference)
        rows.append({
            "class": name,
            "images": int(members.sum()),
            "label_issues": _total(per_image.get("label_issue"), members),
            "estimated_noise_rate": float(noise_rate[label]),
            "mean_score": _mean(per_image.get("score"), members),
            "cv_accuracy": _mean(per_image.get("cv_correct"), members),
            "reference_agreement": _mean(per_image.get("reference_correct"), members),
            "duplicates": _total(per_image.get("duplicate"), members),
            "reference_copies": _total(per_image.get("reference_copy"), members),
            "test_leaks": _total(per_image.get("leakage"), members),
            "diversity": float(diversity[label]),
            "reference_diversity": reference,
            "diversity_ratio": ratio,
        })
    return rows


def _mean(values: np.ndarray | None, members: np.ndarray) -> float | None:
    """Mean of ``values`` over the ``members`` mask; ``None`` if absent or no members."""
    return None if values is None or not members.any() else float(np.mean(values[members]))


def _total(values: np.ndarray | None, members: np.ndarray) -> int | None:
    """Sum of ``values`` over the ``members`` mask; ``None`` if absent."""
    return None if values is None else int(np.sum(values[members]))
