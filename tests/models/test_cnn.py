"""The ``cnn`` backbone: input pipeline and trainable module."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from synthaug.data import ImageDataset
from synthaug.errors import ConfigError
from synthaug.models import BACKBONES, make_backbone
from synthaug.models.cnn import CNNBackbone


def test_prepare_resizes_and_normalises_with_fixed_statistics() -> None:
    images = np.stack([np.zeros((20, 20), np.uint8), np.full((20, 20), 255, np.uint8)])
    dataset = ImageDataset.from_arrays(images, [0, 1], ["dark", "bright"])
    inputs = make_backbone("cnn", image_size=28, mean=0.5, std=0.25).prepare(dataset)
    assert inputs.shape == (2, 1, 28, 28) and inputs.dtype == torch.float32
    torch.testing.assert_close(inputs[0], torch.full((1, 28, 28), -2.0))
    torch.testing.assert_close(inputs[1], torch.full((1, 28, 28), 2.0))


def test_rgb_pipeline_feeds_a_three_channel_network(tiny_arrays_dataset: ImageDataset) -> None:
    backbone = make_backbone("cnn", grayscale=False, image_size=16)
    inputs = backbone.prepare(tiny_arrays_dataset)
    assert inputs.shape == (90, 3, 16, 16)
    assert backbone.build_trainable(3)(inputs[:4]).shape == (4, 3)


def test_trainable_module_follows_the_backbone_conventions() -> None:
    backbone = make_backbone("cnn", channels=(8, 16, 32), hidden=24, dropout=0.4)
    module = backbone.build_trainable(num_classes=5)
    assert isinstance(module, nn.Sequential)
    assert isinstance(module[-1], nn.Linear) and module[-1].out_features == 5
    assert [m.p for m in module.modules() if isinstance(m, nn.Dropout)] == [0.4, 0.4]
    assert module(torch.zeros(2, 1, 28, 28)).shape == (2, 5)  # 28 -> 14 -> 7 -> 3 after 3 blocks
    overridden = backbone.build_trainable(5, dropout=0.0)
    assert [m.p for m in overridden.modules() if isinstance(m, nn.Dropout)] == [0.0, 0.0]


def test_config_rebuilds_the_same_backbone() -> None:
    backbone = make_backbone("cnn", image_size=32, channels=(4, 8), batch_norm=False)
    config = backbone.get_config()
    rebuilt = make_backbone(**config)
    assert isinstance(rebuilt, CNNBackbone) and rebuilt.get_config() == config
    torch.manual_seed(0)
    first = backbone.build_trainable(3)
    torch.manual_seed(0)
    second = rebuilt.build_trainable(3)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in first.modules())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"image_size": 4, "channels": (8, 16, 32)}, "too small"),
        ({"dropout": 1.0}, "dropout"),
        ({"unknown_option": 1}, "unknown_option"),
    ],
)
def test_bad_options_are_config_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_backbone("cnn", **options)


def test_unknown_backbone_names_the_choices() -> None:
    assert "cnn" in BACKBONES
    with pytest.raises(ConfigError, match="unknown backbone 'resnet_9000'.*cnn"):
        make_backbone("resnet_9000")
