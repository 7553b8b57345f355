"""Augmentation policies: parsing, per-example randomness from (seed, epoch, index), soft targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthaug.data.augment import (
    EXAMPLE_POLICIES,
    FlipCrop,
    example_keys,
    parse_augment,
)
from synthaug.errors import ConfigError


def pixels(count: int = 6, size: int = 16, channels: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (count, channels, size, size), dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize("policy", [p for p in EXAMPLE_POLICIES if p != "none"])
def test_each_policy_is_random_across_epochs_and_reproducible(policy: str) -> None:
    augmenter = parse_augment(policy).example_augmenter()
    images = pixels(channels=3)
    index = np.arange(len(images))
    epoch0 = augmenter.batch(images, example_keys(0, 0, index))
    assert epoch0.dtype == torch.uint8 and epoch0.shape == images.shape
    torch.testing.assert_close(augmenter.batch(images, example_keys(0, 0, index)), epoch0, rtol=0, atol=0)
    assert not torch.equal(augmenter.batch(images, example_keys(0, 1, index)), epoch0)
    assert not torch.equal(augmenter.batch(images, example_keys(1, 0, index)), epoch0)
    # One example alone gets exactly its row of the batch: the draw does not depend on the batch.
    key = int(example_keys(0, 0, [3])[0])
    torch.testing.assert_close(augmenter.example(images[3], key), epoch0[3], rtol=0, atol=0)


def test_augmentation_leaves_the_global_generator_alone() -> None:
    augmenter = parse_augment(["flip-crop", "trivialaugment"]).example_augmenter()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    augmenter.batch(pixels(), example_keys(0, 0, np.arange(6)))
    assert torch.equal(torch.rand(3), expected)


def test_flip_crop_is_a_shifted_window_of_the_padded_image_possibly_mirrored() -> None:
    images = pixels(count=64, size=8)
    out = FlipCrop(padding=2).batch(images, example_keys(0, 0, np.arange(64)))
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    flips = 0
    for image, result in zip(padded, out):
        windows = [image[:, r : r + 8, c : c + 8] for r in range(5) for c in range(5)]
        plain = any(torch.equal(result, w) for w in windows)
        mirrored = any(torch.equal(result, w.flip(-1)) for w in windows)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 16 < flips < 48  # about half are flipped
    assert torch.equal(FlipCrop(padding=0, flip=False).batch(images, example_keys(0, 0, np.arange(64))), images)


@pytest.mark.parametrize("policy", ["mixup", "cutmix", ["mixup", "cutmix"], {"name": "mixup", "alpha": 1.0}])
def test_mixup_and_cutmix_targets_are_soft_and_sum_to_one(policy) -> None:
    mixer = parse_augment(policy).batch_mixer(num_classes=4)
    inputs = torch.randn(32, 3, 8, 8)
    labels = torch.arange(32) % 4
    torch.manual_seed(0)
    mixed, targets = mixer(inputs, labels)
    assert mixed.shape == inputs.shape and targets.shape == (32, 4)
    torch.testing.assert_close(targets.sum(1), torch.ones(32))
    assert (targets >= 0).all() and ((targets > 0) & (targets < 1)).any()  # soft, not one-hot
    assert not torch.equal(mixed, inputs)


def test_parse_augment_accepts_lists_options_and_none() -> None:
    parsed = parse_augment(["flip-crop", {"name": "randaugment", "num_ops": 2, "magnitude": 9}, "cutmix"])
    assert [name for name, _ in parsed.example_steps] == ["flip-crop", "randaugment"]
    assert [name for name, _ in parsed.batch_steps] == ["cutmix"]
    assert parse_augment(None).is_identity and parse_augment("none").is_identity
    assert parse_augment("flip-crop").spec() != parse_augment({"name": "flip-crop", "padding": 2}).spec()


@pytest.mark.parametrize(
    ("augment", "message"),
    [
        ("rotate", "unknown policy 'rotate'"),
        ({"name": "randaugment", "strength": 3}, "augment randaugment: .*strength"),
        ({"name": "autoaugment", "policy": "mnist"}, "imagenet, cifar10 or svhn"),
        ([{"name": "mixup"}, "mixup"], "names a batch policy twice"),
        (3, "give a policy name"),
    ],
)
def test_bad_augment_is_a_one_line_config_error(augment, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_augment(augment)
