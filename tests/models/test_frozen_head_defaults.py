"""Default settings train a head on frozen features to convergence, even on small data.

The set-up of a new user: a frozen torchvision backbone, a trained head, 40 images per class,
nothing tuned. The reference is scikit-learn's ``LogisticRegression`` on the same features and
the same training images (a head on frozen features is a linear model); the default head must
come within one point of its test accuracy. The backbone is a real resnet18 with seeded random
weights (never a download) on scikit-learn's handwritten digits, which ship offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from synthaug.data import ImageDataset, train_val_split
from synthaug.data.digits import load_digits_dataset
from synthaug.methods import TrainingConfig, make_method

BACKBONE = {"image_size": 32, "init_seed": 0}
CLASSES = ["0", "1", "2"]
PER_CLASS = 40


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHAUG_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def digits() -> tuple[ImageDataset, ImageDataset]:
    """40 training and 100 test images of each of three digits, drawn with a fixed seed."""
    data = load_digits_dataset(size=32)
    order = np.random.default_rng(0).permutation(len(data))
    by_class = [[i for i in order if data.targets[i] == label] for label in range(len(CLASSES))]
    train = data.subset(np.concatenate([indices[:PER_CLASS] for indices in by_class]))
    test = data.subset(np.concatenate([indices[PER_CLASS:PER_CLASS + 100] for indices in by_class]))
    return train.with_classes(CLASSES), test.with_classes(CLASSES)


def accuracy(method, test: ImageDataset) -> float:
    return float((method.predict_proba(test)[0].argmax(1) == test.targets).mean())


@pytest.mark.slow
def test_default_head_matches_logistic_regression_on_the_same_features(digits) -> None:
    train, test = digits
    method = make_method("deterministic", backbone="resnet18", backbone_options=BACKBONE).fit(train)
    # The same training images the method used (it held out its seeded validation split).
    fit_part, _ = train_val_split(train, method.val_fraction, method.seed)
    features = method.backbone_.prepare(fit_part).numpy()
    reference = LogisticRegression(max_iter=5000).fit(features, fit_part.targets)
    reference_accuracy = float((reference.predict(method.backbone_.prepare(test).numpy()) == test.targets).mean())

    head_accuracy = accuracy(method, test)
    assert head_accuracy >= reference_accuracy - 0.01, (head_accuracy, reference_accuracy)
    # 108 training images are one step per epoch at batch 128: the default trained for at
    # least `min_steps` steps, not 15.
    (history,) = method.training_histories()
    assert len(history.epochs) >= method.min_steps or history.stopped_early

    # What the old defaults (15 epochs at 1e-3) gave: well short of the reference.
    old = make_method("deterministic", backbone="resnet18", backbone_options=BACKBONE, epochs=15,
                      learning_rate=1e-3).fit(train)
    assert accuracy(old, test) < reference_accuracy - 0.05


def test_schedule_stretches_small_sets_to_min_steps_and_keeps_large_ones() -> None:
    config = TrainingConfig()  # epochs=None: 15 epochs or at least min_steps steps
    small = config.schedule(100)  # batch 128: one step per epoch
    assert (small.epochs, small.steps_per_epoch) == (500, 1)
    assert small.patience == 167  # 5 epochs of 15, stretched by the same factor (500 / 15)
    large = config.schedule(60_000)
    assert (large.epochs, large.steps_per_epoch, large.patience) == (15, 469, 5)
    explicit = TrainingConfig(epochs=3).schedule(100)
    assert (explicit.epochs, explicit.patience) == (3, 5)
    assert TrainingConfig(patience=None).schedule(100).patience is None
