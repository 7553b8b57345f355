"""memorisation: copies of training images are caught, fresh images are not."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from synthaug.data import ImageDataset
from synthaug.quality import Memorisation, memorisation


def test_copies_count_and_fresh_images_stay_near_chance(make_pattern_dataset: Callable[..., ImageDataset]) -> None:
    training = make_pattern_dataset(60, seed=0)
    fresh = make_pattern_dataset(30, seed=5)
    training_images, training_labels = training.as_array(), training.targets
    fresh_images, fresh_labels = fresh.as_array(), fresh.targets
    # Generated set: class 0 copies training images (slightly noised), classes 1 and 2 are fresh.
    copied = np.flatnonzero(training_labels == 0)[:30]
    rng = np.random.default_rng(0)
    images = fresh_images.copy()
    class0 = np.flatnonzero(fresh_labels == 0)
    noise = rng.normal(0, 2, size=images[class0].shape)
    images[class0] = np.clip(training_images[copied].astype(float) + noise, 0, 255).astype(np.uint8)
    generated = ImageDataset.from_arrays(images, fresh_labels, fresh.classes, name="generated")
    result = memorisation(generated, training)
    assert list(result) == training.classes
    assert result["horizontal"].closer_than_real == 30 and result["horizontal"].near_copies == 30
    for name in ("vertical", "diagonal"):
        assert result[name].near_copies == 0
        assert result[name].share <= 0.2  # chance level is 5 %
    total = Memorisation.total(list(result.values()))
    assert total.images == 90 and total.closer_than_real >= 30
    assert Memorisation.from_dict(total.to_dict()) == total
