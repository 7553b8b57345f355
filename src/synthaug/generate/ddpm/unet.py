"""A small class-conditional UNet that predicts the diffusion target for 28x28-ish images.

The network follows the DDPM UNet (Ho et al. 2020) cut down for small grayscale images:
residual blocks with GroupNorm, a sinusoidal time embedding plus a learned class
embedding that modulate every block (scale and shift of the second normalisation, as in
Dhariwal & Nichol 2021), no attention. One extra class index, ``num_classes``, is the
"no class" token that classifier-free guidance (Ho & Salimans 2022) uses for the
unconditional prediction.

To run fast on a CPU the network can first fold ``patch_size x patch_size`` pixel patches
into channels (pixel unshuffle) and unfold them at the end, so its full-resolution work
happens at ``image_size / patch_size``.

References:
    Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models".
    Dhariwal & Nichol (2021), "Diffusion Models Beat GANs on Image Synthesis".
    Ho & Salimans (2022), "Classifier-Free Diffusion Guidance".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of :class:`ClassConditionalUNet`; saved in the generator's ``config.json``."""

    # Channels of the images (1 for grayscale, 3 for RGB).
    image_channels: int = 1
    # Number of classes the model is conditioned on (the null class is added on top).
    num_classes: int = 10
    # Channels at each resolution level; each level after the first halves the resolution.
    block_channels: tuple[int, ...] = (32, 64, 64)
    # Residual blocks per level on the way down (the way up has one more, as in DDPM).
    layers_per_block: int = 2
    # Side of the pixel patches folded into channels before the first convolution.
    patch_size: int = 2
    # Groups of every GroupNorm; must divide every entry of ``block_channels``.
    norm_groups: int = 8

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> UNetConfig:
        values = dict(values)
        values["block_channels"] = tuple(values["block_channels"])
        return cls(**values)


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps.

    Args:
        timesteps: Shape ``(B,)``, values in ``[0, 1000)``.
        dim: Embedding size (even).

    Returns:
        Shape ``(B, dim)``.
    """
    half = dim // 2
    frequencies = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half
    )
    angles = timesteps.float()[:, None] * frequencies[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


class ResidualBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the second normalisation modulated by the embedding."""

    def __init__(self, in_channels: int, out_channels: int, embedding_dim: int, norm_groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(norm_groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embedding_to_scale_shift = nn.Linear(embedding_dim, 2 * out_channels)
        self.norm2 = nn.GroupNorm(norm_groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        # Start every block as the identity so a deep stack trains stably from step 0.
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = (
            nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, in_channels, H, W)``, ``embedding``: ``(B, embedding_dim)`` (already SiLU-ed)."""
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.embedding_to_scale_shift(embedding)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return h + self.skip(x)


class ClassConditionalUNet(nn.Module):
    """UNet ``f(x_t, t, y)`` for class-conditional diffusion.

    Args:
        config: Architecture.

    Shapes:
        ``forward(x, timesteps, labels)``: ``x`` ``(B, C, H, W)`` with ``H`` and ``W``
        divisible by ``patch_size``; ``timesteps`` ``(B,)`` float or int in ``[0, 1000)``;
        ``labels`` ``(B,)`` int64 in ``[0, num_classes]`` (``num_classes`` = no class).
        Returns ``(B, C, H, W)``.
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.block_channels
        embedding_dim = 4 * channels[0]
        self.null_class = config.num_classes
        self.time_embedding = nn.Sequential(
            nn.Linear(channels[0], embedding_dim), nn.SiLU(), nn.Linear(embedding_dim, embedding_dim)
        )
        self.class_embedding = nn.Embedding(config.num_classes + 1, embedding_dim)

        folded_channels = config.image_channels * config.patch_size**2
        self.stem = nn.Conv2d(folded_channels, channels[0], 3, padding=1)

        def block(c_in: int, c_out: int) -> ResidualBlock:
            return ResidualBlock(c_in, c_out, embedding_dim, config.norm_groups)

        self.down_blocks = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        skip_channels = [channels[0]]
        current = channels[0]
        for level, width in enumerate(channels):
            for _ in range(config.layers_per_block):
                self.down_blocks.append(block(current, width))
                current = width
                skip_channels.append(current)
            if level < len(channels) - 1:
                self.downsamplers.append(nn.Conv2d(current, current, 3, stride=2, padding=1))
                skip_channels.append(current)

        self.middle_blocks = nn.ModuleList([block(current, current), block(current, current)])

        self.up_blocks = nn.ModuleList()
        self.upsamplers = nn.ModuleList()
        for level, width in reversed(list(enumerate(channels))):
            for _ in range(config.layers_per_block + 1):
                self.up_blocks.append(block(current + skip_channels.pop(), width))
                current = width
            if level > 0:
                self.upsamplers.append(nn.Conv2d(current, current, 3, padding=1))

        self.out_norm = nn.GroupNorm(config.norm_groups, current)
        self.out_conv = nn.Conv2d(current, folded_channels, 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)
        nn.init.zeros_(self.out_conv.bias)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        config = self.config
        if config.patch_size > 1:
            x = F.pixel_unshuffle(x, config.patch_size)
        embedding = self.time_embedding(timestep_embedding(timesteps, config.block_channels[0]))
        embedding = F.silu(embedding + self.class_embedding(labels))

        h = self.stem(x)
        skips = [h]
        blocks = iter(self.down_blocks)
        for level in range(len(config.block_channels)):
            for _ in range(config.layers_per_block):
                h = next(blocks)(h, embedding)
                skips.append(h)
            if level < len(config.block_channels) - 1:
                h = self.downsamplers[level](h)
                skips.append(h)

        for middle in self.middle_blocks:
            h = middle(h, embedding)

        blocks = iter(self.up_blocks)
        upsamplers = iter(self.upsamplers)
        for level in reversed(range(len(config.block_channels))):
            for _ in range(config.layers_per_block + 1):
                h = next(blocks)(torch.cat([h, skips.pop()], dim=1), embedding)
            if level > 0:
                # Nearest-neighbour to the skip's size handles odd sides (7 -> 4 -> 7).
                h = next(upsamplers)(F.interpolate(h, size=skips[-1].shape[-2:], mode="nearest"))

        h = self.out_conv(F.silu(self.out_norm(h)))
        if config.patch_size > 1:
            h = F.pixel_shuffle(h, config.patch_size)
        return h
