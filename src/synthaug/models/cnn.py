"""``cnn``: a small convolutional network trained from scratch, for small images.

The default offline backbone (Fashion-MNIST-sized inputs): convolution blocks with zero
padding, batch norm, ReLU and max pooling, then a dropout-regularised fully connected
classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from synthaug.data.dataset import ImageDecoder
from synthaug.errors import ConfigError
from synthaug.models.base import Backbone

if TYPE_CHECKING:
    from synthaug.data import ImageDataset
    from synthaug.progress import ProgressCallback

# Pixel statistics of the Fashion-MNIST training set (scale [0, 1]); a fixed constant rather
# than statistics of whatever set is being prepared, so train and test go through the same map.
FASHION_MNIST_MEAN = 0.2860
FASHION_MNIST_STD = 0.3530


class CNNBackbone(Backbone):
    """A small CNN from scratch: ``len(channels)`` conv blocks and a two-layer classifier.

    Each block is ``Conv3x3(padding=1) -> BatchNorm -> ReLU -> MaxPool2x2`` (halving the
    image side), so a 28x28 input with ``channels=(32, 64)`` ends as 64 maps of 7x7. The
    classifier is ``Flatten -> Dropout -> Linear(hidden) -> ReLU -> Dropout -> Linear(C)``;
    its two dropout layers are what MC dropout keeps on at test time.

    Args:
        image_size: Images are resized to ``image_size x image_size`` pixels.
        grayscale: Convert images to one grey channel (``True``) or to RGB.
        channels: Output channels of each convolution block.
        hidden: Width of the fully connected hidden layer.
        batch_norm: Put batch normalisation after each convolution (faster, more stable
            training; Guo et al. 2017 note it can raise miscalibration, which the
            calibration methods then have to fix).
        dropout: Default dropout probability of the classifier's dropout layers.
        mean: Pixel mean subtracted after scaling to ``[0, 1]`` (Fashion-MNIST's by default).
        std: Pixel standard deviation divided by after subtracting ``mean``.
    """

    name = "cnn"
    trains_on_pixels = True

    def __init__(
        self,
        *,
        image_size: int = 28,
        grayscale: bool = True,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        batch_norm: bool = True,
        dropout: float = 0.3,
        mean: float = FASHION_MNIST_MEAN,
        std: float = FASHION_MNIST_STD,
    ) -> None:
        if image_size < 2 ** len(channels):
            raise ConfigError(
                f"cnn: image_size={image_size} is too small for {len(channels)} pooling "
                f"blocks; use image_size >= {2 ** len(channels)} or fewer channels"
            )
        if not channels or any(int(c) < 1 for c in channels):
            raise ConfigError(f"cnn: channels must be positive integers, got {list(channels)}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"cnn: dropout must be in [0, 1), got {dropout}")
        self.image_size = int(image_size)
        self.grayscale = bool(grayscale)
        self.channels = tuple(int(c) for c in channels)
        self.hidden = int(hidden)
        self.batch_norm = bool(batch_norm)
        self.dropout = float(dropout)
        self.mean = float(mean)
        self.std = float(std)

    def prepare(self, dataset: ImageDataset, *, progress: ProgressCallback | None = None) -> torch.Tensor:
        """Decode, resize and normalise every image.

        Returns:
            float32 tensor ``(N, C, image_size, image_size)``, ``C`` = 1 (grayscale) or 3.
        """
        size, mode = self.pixel_array()
        pixels = dataset.as_array(size=size, mode=mode)
        return self.normalize_pixels(torch.from_numpy(np.array(pixels)).permute(0, 3, 1, 2)).contiguous()

    def pixel_decoder(self) -> ImageDecoder:
        """PIL image -> uint8 ``(C, image_size, image_size)``, as :meth:`ImageDataset.as_array` decodes it."""
        size, mode = self.pixel_array()
        return ImageDecoder(size, mode)

    def pixel_array(self) -> tuple[tuple[int, int], str]:
        return (self.image_size, self.image_size), "L" if self.grayscale else "RGB"

    def normalize_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Scale to ``[0, 1]``, subtract ``mean``, divide by ``std`` (float32)."""
        return (pixels.float() / 255.0 - self.mean) / self.std

    def build_trainable(self, num_classes: int, dropout: float | None = None) -> nn.Sequential:
        """Build the CNN: ``(N, C, H, W)`` pixels -> ``(N, num_classes)`` logits."""
        p = self.dropout if dropout is None else float(dropout)
        layers: list[nn.Module] = []
        in_channels = 1 if self.grayscale else 3
        side = self.image_size
        for out_channels in self.channels:
            block: list[nn.Module] = [
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not self.batch_norm)
            ]
            if self.batch_norm:
                block.append(nn.BatchNorm2d(out_channels))
            block += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            layers.append(nn.Sequential(*block))
            in_channels, side = out_channels, side // 2
        layers += [
            nn.Flatten(),
            nn.Dropout(p),
            nn.Linear(in_channels * side * side, self.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p),
            nn.Linear(self.hidden, num_classes),
        ]
        return nn.Sequential(*layers)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image_size": self.image_size,
            "grayscale": self.grayscale,
            "channels": list(self.channels),
            "hidden": self.hidden,
            "batch_norm": self.batch_norm,
            "dropout": self.dropout,
            "mean": self.mean,
            "std": self.std,
        }
