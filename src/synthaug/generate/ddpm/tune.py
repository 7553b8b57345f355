"""Fine-tune a trained ddpm generator on a user's few real images (personalisation).

The shipped generator knows Fashion-MNIST's classes in general; a few hundred steps on the
user's own images per class pull its samples towards them (what DataDream does with LoRA on
a large model; Kim et al. 2024). A few images are easy to memorise, so the defaults stay
short and gentle: a small learning rate, few steps, label dropout kept (guidance still
works) and an exponential moving average (EMA) of the weights, which is what gets saved and
sampled. Whether it memorised anyway is checked after tuning by the near-copy audit
(``synthaug train-generator --init-from`` runs it; see :mod:`synthaug.study.tuning`).

The tuned generator is a normal generator directory (``model.safetensors`` +
``config.json``), loadable by the ``ddpm`` backend as ``--model GEN``; its config records
where it started from and the fingerprint of the images it was tuned on.

References:
    Kim et al. (2024), "DataDream: Few-shot Guided Dataset Generation" (ECCV).
    Ruiz et al. (2023), "DreamBooth: Fine Tuning Text-to-Image Diffusion Models for
    Subject-Driven Generation".
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from synthaug.data import ImageDataset
from synthaug.errors import ConfigError
from synthaug.generate.ddpm.pipeline import DiffusionGenerator, default_generator_dir
from synthaug.generate.ddpm.train import update_ema
from synthaug.progress import ProgressCallback, report
from synthaug.runtime import pick_device

# Names ``--init-from`` accepts for the generator shipped with synthaug.
SHIPPED_NAMES = ("ddpm-fashion-mnist", "synthaug/ddpm-fashion-mnist")


@dataclass(frozen=True)
class TuningConfig:
    """Settings of :func:`tune_generator`; saved in the tuned generator's ``config.json``."""

    # Optimisation steps: few, so that a handful of images is not memorised.
    steps: int = 300
    # Images per step, drawn with replacement from the real images.
    batch_size: int = 64
    # AdamW learning rate: a tenth of training from scratch, to move the model gently.
    learning_rate: float = 1e-4
    # Decay of the EMA of the weights (warmed up as (1+n)/(10+n)); short runs need a short memory.
    ema_decay: float = 0.99
    # Probability of dropping the label of an example (keeps classifier-free guidance working).
    class_dropout: float = 0.1
    # Seed of all training randomness.
    seed: int = 0


@dataclass(frozen=True)
class TuningResult:
    """What :func:`tune_generator` did."""

    out_dir: Path
    steps: int
    seconds: float
    final_loss: float
    images: int


def resolve_init_from(init_from: str | os.PathLike[str]) -> Path:
    """The generator directory ``--init-from`` names (``ddpm-fashion-mnist`` is the shipped one)."""
    return default_generator_dir() if str(init_from) in SHIPPED_NAMES else Path(init_from)


def tune_generator(
    real: ImageDataset,
    out_dir: str | os.PathLike[str],
    init_from: str | os.PathLike[str] = "ddpm-fashion-mnist",
    config: TuningConfig | None = None,
    device: str | None = None,
    progress: ProgressCallback | None = None,
    **overrides: float,
) -> TuningResult:
    """Fine-tune the generator ``init_from`` on ``real`` and save it to ``out_dir``.

    Args:
        real: The real images; every class must be one of the generator's (matched by name).
        out_dir: Where the tuned generator is written.
        init_from: A generator directory or ``ddpm-fashion-mnist`` (the shipped one).
        config: Tuning settings; ``overrides`` replace single fields (``steps=100``).
        device: Torch device (default :func:`synthaug.runtime.pick_device`).
        progress: Receives one event per step.

    Raises:
        ConfigError: A class of ``real`` is unknown to the generator, or ``real`` is empty.
    """
    config = TuningConfig(**{**asdict(config or TuningConfig()), **overrides})
    torch_device = pick_device(device)
    base = DiffusionGenerator.load(resolve_init_from(init_from), device=torch_device)
    counts = {name: count for name, count in real.class_counts().items() if count}
    unknown = [name for name in counts if name not in base.classes]
    if unknown or not counts:
        raise ConfigError(
            f"--data {real.name}: " + (f"classes {unknown} are unknown to the generator (it knows: "
            f"{', '.join(base.classes)}); a class-conditional model is tuned on its own classes only"
            if unknown else "has no images")  # fmt: skip
        )
    real = real.with_classes(base.classes)
    mode = "L" if base.image_channels == 1 else "RGB"
    pixels = real.as_array(size=(base.image_size, base.image_size), mode=mode)
    images = torch.tensor(pixels).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(torch_device)
    labels = torch.tensor(real.targets, dtype=torch.long, device=torch_device)

    model = base.unet.train().requires_grad_(True)
    ema_model = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.0)
    generator = torch.Generator().manual_seed(config.seed)
    started = time.perf_counter()
    losses: list[float] = []
    for step in range(config.steps):
        batch = torch.randint(0, len(images), (config.batch_size,), generator=generator).to(torch_device)
        loss = base.diffusion.training_loss(
            model, images[batch], labels[batch], generator, config.class_dropout, model.null_class
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        update_ema(ema_model, model, config.ema_decay, step)
        losses.append(loss.item())
        report(progress, "tune", step + 1, config.steps)
    tuned = DiffusionGenerator(
        ema_model,
        classes=base.classes,
        image_size=base.image_size,
        schedule=base.schedule_config,
        training_record={
            "tuned_from": str(init_from),
            "base_training": base.training_record,
            "data": real.name,
            "data_fingerprint": real.fingerprint(),
            "images_per_class": counts,
            "tuning": asdict(config),
        },
        sampling_defaults=base.sampling_defaults,
    )
    out = tuned.save(out_dir)
    tail = losses[-min(50, len(losses)) :] or [float("nan")]
    return TuningResult(out, config.steps, time.perf_counter() - started, sum(tail) / len(tail), len(real))
