"""Seeded random predictions shared by the metrics tests."""

from __future__ import annotations

import numpy as np
import pytest


def random_predictions(
    n_samples: int, n_examples: int, n_classes: int, seed: int = 0, temperature: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Float32 softmax probability samples ``(S, N, C)`` and labels drawn from their mean.

    Labels are sampled from the mean predictive, so the predictions are roughly calibrated,
    with a realistic spread of confidences.
    """
    generator = np.random.default_rng(seed)
    example_logits = generator.normal(scale=2.0, size=(1, n_examples, n_classes))
    sample_logits = example_logits + generator.normal(scale=1.0, size=(n_samples, n_examples, n_classes))
    scaled = sample_logits / temperature
    probs = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    mean_probs = probs.mean(axis=0)
    cumulative = np.cumsum(mean_probs, axis=-1)
    labels = (generator.random((n_examples, 1)) > cumulative).sum(axis=-1).clip(max=n_classes - 1)
    return probs.astype(np.float32), labels.astype(np.int64)


@pytest.fixture
def predictions() -> tuple[np.ndarray, np.ndarray]:
    """Three samples of 500 examples over 5 classes."""
    return random_predictions(n_samples=3, n_examples=500, n_classes=5, seed=0)


@pytest.fixture
def make_predictions():
    """The :func:`random_predictions` factory, for tests that need other shapes or seeds."""
    return random_predictions
