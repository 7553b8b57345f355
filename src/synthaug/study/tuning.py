"""A generator tuned on the real images, with a check that it did not learn to copy them.

:func:`tune_and_check` fine-tunes the ddpm generator on a few real images
(:func:`synthaug.generate.ddpm.tune.tune_generator`), samples ``check_per_class`` images per
class from it and runs the audit's near-copy check
(:func:`synthaug.audit.find_copies`) against the images it was tuned on. The share of
samples that nearly copy a training image is written to ``GEN/tuning_check.json`` and
returned: a tuned generator that mostly replays its few training images adds nothing a
classifier has not seen.

Used by ``synthaug train-generator --init-from`` and by studies whose synthetic source has
``generate: {tune_on: real}``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from synthaug.fileio import atomic_write_text

CHECK_FILE = "tuning_check.json"


@dataclass(frozen=True)
class TunedGenerator:
    """A tuned generator and its near-copy check.

    Attributes:
        out_dir: The generator directory (``--model`` of the ddpm backend).
        steps: Fine-tuning steps.
        seconds: Fine-tuning wall time.
        final_loss: Mean loss over the last steps.
        images: Real images it was tuned on.
        checked: Samples drawn for the check.
        near_copies: Samples whose thumbnail correlates >= the audit's threshold with a
            training image (or equals one).
    """

    out_dir: str
    steps: int
    seconds: float
    final_loss: float
    images: int
    checked: int
    near_copies: int

    @property
    def near_copy_share(self) -> float:
        return self.near_copies / self.checked if self.checked else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "near_copy_share": self.near_copy_share}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TunedGenerator:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})


def tune_and_check(
    real: Any,
    out_dir: str | os.PathLike[str],
    init_from: str | os.PathLike[str] = "ddpm-fashion-mnist",
    check_per_class: int = 20,
    seed: int = 0,
    device: str | None = None,
    progress: Any = None,
    **overrides: Any,
) -> TunedGenerator:
    """Tune on ``real``, then count near-copies of ``real`` among fresh samples.

    Args:
        real: The real images (an :class:`~synthaug.data.ImageDataset`).
        out_dir: Where the tuned generator goes.
        init_from: Generator to start from (``ddpm-fashion-mnist`` is the shipped one).
        check_per_class: Samples per class drawn for the near-copy check.
        seed: Seed of tuning and of the check's samples.
        device: Torch device.
        progress: Progress callback of the tuning steps.
        **overrides: :class:`~synthaug.generate.ddpm.tune.TuningConfig` fields (``steps``...).
    """
    from synthaug.audit import find_copies
    from synthaug.data import ImageDataset
    from synthaug.generate.ddpm.pipeline import DiffusionGenerator
    from synthaug.generate.ddpm.tune import tune_generator
    from synthaug.runtime import pick_device

    result = tune_generator(real, out_dir, init_from, device=device, progress=progress, seed=seed, **overrides)
    generator = DiffusionGenerator.load(result.out_dir, device=pick_device(device))
    present = [name for name, count in real.class_counts().items() if count]
    labels = [name for name in present for _ in range(check_per_class)]
    seeds = [seed * 1_000_003 + position for position in range(len(labels))]
    samples = generator.sample(labels, seeds)
    sampled = ImageDataset.from_arrays(
        samples, [generator.classes.index(name) for name in labels], generator.classes, name="tuned samples"
    )
    copies = find_copies(sampled, real.with_classes(generator.classes))
    tuned = TunedGenerator(
        out_dir=str(result.out_dir),
        steps=result.steps,
        seconds=round(result.seconds, 2),
        final_loss=result.final_loss,
        images=result.images,
        checked=len(labels),
        near_copies=int(copies.found.sum()),
    )
    atomic_write_text(Path(result.out_dir) / CHECK_FILE, json.dumps(tuned.to_dict(), indent=2) + "\n")
    return tuned
