"""Classical data augmentation: per-example policies and batch-level MixUp / CutMix.

A method's ``augment`` parameter names what happens to the training images, as one entry or
a list of entries, each a policy name or ``{name: ..., option: value}``:

================ ======================================================================
``none``          nothing (the default: a flip is wrong for digits, so nothing is on
                  unless the config says so)
``flip-crop``     random crop after zero padding (``padding``, default 4) + horizontal
                  flip (``flip``, default true): the standard small-image recipe
``randaugment``   :class:`torchvision.transforms.v2.RandAugment` (``num_ops``, ``magnitude``, ...)
``trivialaugment`` :class:`~torchvision.transforms.v2.TrivialAugmentWide` (``num_magnitude_bins``)
``autoaugment``   :class:`~torchvision.transforms.v2.AutoAugment` (``policy``: imagenet,
                  cifar10 or svhn)
``augmix``        :class:`~torchvision.transforms.v2.AugMix` (``severity``, ``mixture_width``, ...)
``mixup``         :class:`~torchvision.transforms.v2.MixUp` on each batch (``alpha``, default 0.2)
``cutmix``        :class:`~torchvision.transforms.v2.CutMix` on each batch (``alpha``, default 1.0);
                  with ``mixup`` too, each batch gets one of the two (torchvision's recipe)
================ ======================================================================

Per-example policies work on uint8 pixels ``(C, H, W)`` before normalisation; MixUp and
CutMix work on the normalised batch and turn the labels into probabilities ``(B, C)``.

Reproducibility: the randomness of example ``index`` in epoch ``epoch`` is a function of
``(seed, epoch, index)`` only (:func:`example_keys`), not of the order examples are drawn in,
so an epoch gives the same images whether they are augmented in the training process, in one
DataLoader worker or in eight, and a new epoch draws new ones.

References:
    Cubuk et al., "RandAugment", CVPR Workshops 2020; Müller & Hutter, "TrivialAugment",
    ICCV 2021; Cubuk et al., "AutoAugment", CVPR 2019; Hendrycks et al., "AugMix", ICLR
    2020; Zhang et al., "mixup", ICLR 2018; Yun et al., "CutMix", ICCV 2019.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from synthaug.errors import ConfigError

EXAMPLE_POLICIES = ("none", "flip-crop", "randaugment", "trivialaugment", "autoaugment", "augmix")
"""Policies applied to each example."""
BATCH_POLICIES = ("mixup", "cutmix")
"""Policies applied to each batch (soft targets)."""

_MASK64 = (1 << 64) - 1


def _mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 values (a bijection that scrambles every bit)."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def example_keys(seed: int, epoch: int, indices: np.ndarray | Sequence[int]) -> np.ndarray:
    """uint64 random keys of examples ``indices`` in ``epoch``, a function of the three numbers only."""
    base = _mix64(np.array([(int(seed) * 0x9E3779B97F4A7C15 + int(epoch)) & _MASK64], dtype=np.uint64))
    with np.errstate(over="ignore"):
        return _mix64(base ^ _mix64(np.asarray(indices, dtype=np.uint64) + np.uint64(0x632BE59BD9B4E019)))


def _uniform(keys: np.ndarray, stream: int) -> np.ndarray:
    """float64 uniforms in ``[0, 1)``, one per key, independent across ``stream`` numbers."""
    with np.errstate(over="ignore"):
        bits = _mix64(keys ^ np.uint64((stream + 1) * 0xD1B54A32D192ED03 & _MASK64))
    return (bits >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class FlipCrop:
    """Random crop of a zero-padded image back to its size, then a horizontal flip with p = 1/2.

    Its random numbers come straight from the example keys, so a whole batch is augmented
    with one gather (:meth:`batch`) and gives exactly what one example at a time does.
    """

    def __init__(self, padding: int = 4, flip: bool = True) -> None:
        if int(padding) < 0:
            raise ConfigError(f"augment flip-crop: padding must be >= 0, got {padding}")
        self.padding = int(padding)
        self.flip = bool(flip)

    def batch(self, pixels: torch.Tensor, keys: np.ndarray) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``, example ``b`` drawn from ``keys[b]``."""
        p = self.padding
        count, _, height, width = pixels.shape
        shifts = torch.from_numpy(
            np.floor(np.stack([_uniform(keys, 0), _uniform(keys, 1)]) * (2 * p + 1)).astype(np.int64)
        )
        padded = torch.nn.functional.pad(pixels, (p, p, p, p)) if p else pixels
        rows = shifts[0][:, None] + torch.arange(height)[None]  # (B, H)
        cols = shifts[1][:, None] + torch.arange(width)[None]  # (B, W)
        if self.flip:
            flipped = torch.from_numpy(_uniform(keys, 2) < 0.5)
            cols = torch.where(flipped[:, None], cols.flip(1), cols)
        batch_index = torch.arange(count)[:, None, None]
        # (B, H, W, C) after advanced indexing on (B, C, H+2p, W+2p) permuted to channels last.
        out = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]]
        return out.permute(0, 3, 1, 2).contiguous()

    def __repr__(self) -> str:
        return f"FlipCrop(padding={self.padding}, flip={self.flip})"


def _torchvision_policy(name: str, options: dict[str, Any]) -> Callable[[torch.Tensor], torch.Tensor]:
    from torchvision.transforms import v2

    classes = {
        "randaugment": v2.RandAugment,
        "trivialaugment": v2.TrivialAugmentWide,
        "autoaugment": v2.AutoAugment,
        "augmix": v2.AugMix,
    }
    options = dict(options)
    if name == "autoaugment" and "policy" in options:
        try:
            options["policy"] = v2.AutoAugmentPolicy(str(options["policy"]).lower())
        except ValueError:
            raise ConfigError(
                f"augment autoaugment: policy must be imagenet, cifar10 or svhn, got {options['policy']!r}"
            ) from None
    try:
        return classes[name](**options)
    except TypeError as error:
        raise ConfigError(f"augment {name}: {error}; see torchvision.transforms.v2.{classes[name].__name__}") from None


@dataclass(frozen=True)
class Augmentation:
    """A parsed ``augment`` parameter: per-example steps and batch-level mixing.

    Build it with :func:`parse_augment`. ``example_steps`` is empty and ``batch_steps`` too
    for ``none``.
    """

    example_steps: tuple[tuple[str, dict[str, Any]], ...]  # (policy name, options) in order
    batch_steps: tuple[tuple[str, dict[str, Any]], ...]  # mixup / cutmix with their options

    @property
    def is_identity(self) -> bool:
        return not self.example_steps and not self.batch_steps

    def spec(self) -> str:
        """A canonical string of the policy (for cache keys and reports)."""
        return json.dumps([[name, options] for name, options in self.example_steps + self.batch_steps], sort_keys=True)

    def example_augmenter(self) -> ExampleAugmenter | None:
        """The per-example part, or ``None`` when there is none."""
        return ExampleAugmenter(self.example_steps) if self.example_steps else None

    def batch_mixer(
        self, num_classes: int
    ) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None:
        """``(inputs (B, ...), labels (B,)) -> (mixed inputs, probabilities (B, C))``, or ``None``.

        Draws from torch's global generator (which the training loop seeds).
        """
        if not self.batch_steps:
            return None
        from torchvision.transforms import v2

        classes = {"mixup": v2.MixUp, "cutmix": v2.CutMix}
        defaults = {"mixup": {"alpha": 0.2}, "cutmix": {"alpha": 1.0}}
        mixers = []
        for name, options in self.batch_steps:
            try:
                mixers.append(classes[name](num_classes=num_classes, **{**defaults[name], **options}))
            except TypeError as error:
                raise ConfigError(f"augment {name}: {error}; its option is alpha") from None
        return mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)


class ExampleAugmenter:
    """Applies the per-example steps to uint8 pixels, with randomness from the example keys.

    ``flip-crop`` draws from the keys directly (and is vectorised over a batch); the
    torchvision policies draw from torch's default CPU generator, re-seeded from the key
    before each example and step, so the caller forks it (:meth:`batch` does).
    """

    def __init__(self, steps: Sequence[tuple[str, dict[str, Any]]]) -> None:
        self.steps = [
            FlipCrop(**options) if name == "flip-crop" else _torchvision_policy(name, options)
            for name, options in steps
        ]

    def batch(self, pixels: torch.Tensor, keys: np.ndarray) -> torch.Tensor:
        """uint8 ``(B, C, H, W)`` -> augmented uint8 ``(B, C, H, W)``; ``keys`` from :func:`example_keys`."""
        with torch.random.fork_rng(devices=[]):
            for number, step in enumerate(self.steps):
                if isinstance(step, FlipCrop):
                    pixels = step.batch(pixels, keys)
                    continue
                step_seeds = _mix64(keys ^ np.uint64(number + 1)) >> np.uint64(1)  # < 2^63
                augmented = []
                for image, step_seed in zip(pixels, step_seeds):
                    torch.default_generator.manual_seed(int(step_seed))
                    augmented.append(step(image))
                pixels = torch.stack(augmented)
        return pixels

    def example(self, pixels: torch.Tensor, key: int) -> torch.Tensor:
        """uint8 ``(C, H, W)`` -> augmented, the same as row ``b`` of :meth:`batch` with ``keys[b] = key``."""
        return self.batch(pixels[None], np.array([key], dtype=np.uint64))[0]


def _entry(entry: Any, where: str) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        name, options = entry, {}
    elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
        options = {k: v for k, v in entry.items() if k != "name"}
        name = entry["name"]
    else:
        raise ConfigError(f"{where}: give a policy name or {{name: POLICY, option: value}}, got {entry!r}")
    name = name.strip().lower()
    if name not in EXAMPLE_POLICIES + BATCH_POLICIES:
        raise ConfigError(
            f"{where}: unknown policy {name!r}; choose from {', '.join(EXAMPLE_POLICIES + BATCH_POLICIES)}"
        )
    return name, options


def parse_augment(augment: Any) -> Augmentation:
    """Parse a method's ``augment`` parameter (see the module docstring).

    Raises:
        ConfigError: An unknown policy, a malformed entry or an option the policy does not take.
    """
    if augment is None:
        return Augmentation((), ())
    entries = augment if isinstance(augment, (list, tuple)) else [augment]
    example_steps, batch_steps = [], []
    for position, entry in enumerate(entries):
        name, options = _entry(entry, f"augment[{position}]" if isinstance(augment, (list, tuple)) else "augment")
        if name == "none":
            continue
        (batch_steps if name in BATCH_POLICIES else example_steps).append((name, options))
    names = [name for name, _ in batch_steps]
    if len(set(names)) < len(names):
        raise ConfigError(f"augment: {names} names a batch policy twice; give each once")
    parsed = Augmentation(tuple(example_steps), tuple(batch_steps))
    parsed.example_augmenter()  # validates the options now, not in the middle of training
    if batch_steps:
        parsed.batch_mixer(2)
    return parsed
