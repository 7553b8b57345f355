"""Train the embedded class-conditional diffusion generator on a labelled image dataset.

:func:`train_generator` reads top to bottom: images to tensors in ``[-1, 1]``, a
:class:`~synthaug.generate.ddpm.unet.ClassConditionalUNet`, AdamW with a short warm-up,
the DDPM loss with label dropout (so the same network gives the unconditional prediction
that classifier-free guidance needs) and an exponential moving average (EMA) of the
weights, which is what gets sampled from.

Every ``checkpoint_every`` steps the full training state (weights, EMA, optimizer moments,
the random generator's state; step, elapsed time and loss history in the file's metadata)
is written atomically to the one file ``OUT/checkpoint.safetensors``, and the EMA generator
is exported to ``OUT/model.safetensors`` + ``OUT/config.json``. Running the same call again continues
from the checkpoint, and because all randomness comes from the saved generator, a run
interrupted and resumed ends with the same weights as one that never stopped. Asking for
more steps later extends a finished run. No pickle is written or read anywhere.

References:
    Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models".
    Ho & Salimans (2022), "Classifier-Free Diffusion Guidance".
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from synthaug.errors import ConfigError, DataError, TrainingError
from synthaug.fileio import atomic_write_bytes
from synthaug.generate.ddpm.pipeline import DiffusionGenerator
from synthaug.generate.ddpm.schedule import DiffusionSchedule, ScheduleConfig
from synthaug.generate.ddpm.unet import ClassConditionalUNet, UNetConfig
from synthaug.progress import ProgressCallback, report

CHECKPOINT_FILE = "checkpoint.safetensors"


@dataclass(frozen=True)
class GeneratorTrainingConfig:
    """Optimisation settings of :func:`train_generator`; saved beside the weights.

    (Named apart from :class:`synthaug.methods.TrainingConfig`, the classifiers' settings.)
    """

    # Optimisation steps in total (a rerun with more steps extends a finished run).
    steps: int = 2500
    # Images per step.
    batch_size: int = 128
    # AdamW learning rate after warm-up (constant; the EMA does the averaging).
    learning_rate: float = 1e-3
    # Steps of linear learning-rate warm-up from 0.
    warmup_steps: int = 200
    # AdamW weight decay.
    weight_decay: float = 0.0
    # Gradient norm clip.
    max_grad_norm: float = 1.0
    # Decay of the exponential moving average of the weights (warmed up as (1+n)/(10+n)).
    ema_decay: float = 0.999
    # Probability of training a step's example without its label (classifier-free guidance).
    class_dropout: float = 0.1
    # Steps between checkpoints (and exports of the EMA model).
    checkpoint_every: int = 250
    # Seed of the one generator all training randomness comes from.
    seed: int = 0


@dataclass
class TrainingResult:
    """What :func:`train_generator` did.

    Attributes:
        out_dir: The generator directory (loadable with ``DiffusionGenerator.load``).
        steps: Steps trained in total, over all runs.
        resumed_from: Step the run continued from (0 for a fresh run).
        wall_seconds: Training time over all runs.
        final_loss: Mean loss over the last checkpoint interval.
        num_parameters: Parameters of the network.
    """

    out_dir: Path
    steps: int
    resumed_from: int
    wall_seconds: float
    final_loss: float
    num_parameters: int


def _image_tensor(dataset: Any, channels: int, image_size: int) -> torch.Tensor:
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise ConfigError(f"image_channels must be 1 or 3, got {channels}")
    pixels = dataset.as_array(size=(image_size, image_size), mode=mode)  # (N, H, W, C) uint8
    return torch.tensor(pixels).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    # AdamW's state is a dict of tensors per parameter index: flattened to safetensors keys,
    # while the hyper-parameter groups (plain numbers) go to JSON.
    state = optimizer.state_dict()
    tensors = {
        f"optimizer.{index}.{name}": value.detach().clone()
        for index, per_param in state["state"].items()
        for name, value in per_param.items()
    }
    return tensors, state["param_groups"]


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})


def update_ema(average: torch.nn.Module, model: torch.nn.Module, decay: float, updates: int) -> None:
    """Move ``average``'s parameters towards ``model``'s: ``a <- decay_n * a + (1 - decay_n) * p``.

    The decay is warmed up as ``decay_n = min(decay, (1 + n) / (10 + n))`` (``n = updates``), so
    the average forgets its random start within the first few dozen steps instead of the
    ``1 / (1 - decay)`` steps a fixed decay needs (the schedule of TensorFlow's
    ``ExponentialMovingAverage`` with ``num_updates``). Only parameters are averaged: the
    network has no running statistics. ``torch.optim.swa_utils.get_ema_multi_avg_fn`` has a
    fixed decay and no warm-up, so it is not used here.
    """
    decay = min(decay, (1 + updates) / (10 + updates))
    with torch.no_grad():
        for average_parameter, parameter in zip(average.parameters(), model.parameters(), strict=True):
            average_parameter.lerp_(parameter, 1 - decay)


def _identity(
    dataset: Any,
    unet_config: UNetConfig,
    schedule_config: ScheduleConfig,
    training: GeneratorTrainingConfig,
    image_size: int,
) -> dict[str, Any]:
    """Everything that must match for a checkpoint to be continued (not ``steps``)."""
    settings = asdict(training)
    settings.pop("steps")
    settings.pop("checkpoint_every")
    identity = {
        "data": {"name": dataset.name, "fingerprint": dataset.fingerprint(), "size": len(dataset)},
        "classes": list(dataset.classes),
        "image_size": image_size,
        "unet": unet_config.to_dict(),
        "schedule": schedule_config.to_dict(),
        "training": settings,
    }
    # Compared with the copy read back from JSON, so tuples must already be lists.
    return json.loads(json.dumps(identity))


def train_generator(
    dataset: Any,
    out_dir: str | os.PathLike,
    *,
    training: GeneratorTrainingConfig | None = None,
    unet: UNetConfig | None = None,
    schedule: ScheduleConfig | None = None,
    image_size: int | None = None,
    device: str | torch.device | None = None,
    progress: ProgressCallback | None = None,
) -> TrainingResult:
    """Train (or continue training) a class-conditional diffusion generator.

    Args:
        dataset: An :class:`~synthaug.data.ImageDataset` (labelled images).
        out_dir: Generator directory; created if missing. If it holds a checkpoint of the
            same data and settings, training continues from it.
        training: Optimisation settings (default :class:`GeneratorTrainingConfig`).
        unet: Architecture; ``num_classes`` and ``image_channels`` are taken from the data
            (channels: 1 if the first image is grayscale, else 3).
        schedule: Noise schedule and prediction type.
        image_size: Side of the square training images; default the first image's height.
        device: Torch device (default CPU, which keeps runs bit-reproducible).
        progress: Called with a progress event per step (stage ``"train generator"``).

    Returns:
        A :class:`TrainingResult`.

    Raises:
        DataError: The dataset is empty.
        ConfigError: ``out_dir`` holds a checkpoint made with other data or settings, or a
            setting is invalid.
        TrainingError: The loss became NaN or infinite.
    """
    training = training or GeneratorTrainingConfig()
    if training.steps < 1 or training.batch_size < 1 or training.checkpoint_every < 1:
        raise ConfigError("steps, batch_size and checkpoint_every must be positive integers")
    if len(dataset) == 0:
        raise DataError(f"dataset {dataset.name!r} has no images to train a generator on")
    first_image = dataset[0][0]
    channels = 1 if first_image.mode in ("L", "1", "I", "F") else 3
    unet = unet or UNetConfig()
    unet = UNetConfig.from_dict({**unet.to_dict(), "num_classes": len(dataset.classes), "image_channels": channels})
    schedule_config = schedule or ScheduleConfig()
    image_size = image_size or first_image.height
    if image_size % unet.patch_size:
        raise ConfigError(f"image_size {image_size} must be divisible by patch_size {unet.patch_size}")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    identity = _identity(dataset, unet, schedule_config, training, image_size)
    device = torch.device(device or "cpu")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(training.seed)  # the initial weights come from the seed too
        model = ClassConditionalUNet(unet).to(device)
        ema_model = ClassConditionalUNet(unet).to(device).requires_grad_(False)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay
    )
    generator = torch.Generator().manual_seed(training.seed)
    diffusion = DiffusionSchedule(schedule_config)

    step, wall_seconds, losses = 0, 0.0, []
    checkpoint_path = out_dir / CHECKPOINT_FILE
    if checkpoint_path.exists():
        with safe_open(checkpoint_path, framework="pt") as handle:
            saved = json.loads(handle.metadata()["state"])
        if saved["identity"] != identity:
            raise ConfigError(
                f"{out_dir} holds a generator checkpoint trained with other data or settings; "
                "use a new --out directory (or delete the old one) to start afresh"
            )
        tensors = load_file(checkpoint_path)
        model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        ema_model.load_state_dict({k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")})
        _restore_optimizer(optimizer, tensors, saved["optimizer_param_groups"])
        generator.set_state(tensors["generator_state"])
        step, wall_seconds, losses = saved["step"], saved["wall_seconds"], saved["losses"]
    else:
        ema_model.load_state_dict(model.state_dict())
    resumed_from = step

    images = _image_tensor(dataset, channels, image_size)
    labels = torch.tensor(np.asarray(dataset.targets), dtype=torch.long)

    def save_checkpoint() -> None:
        optimizer_tensors, groups = _optimizer_tensors(optimizer)
        tensors = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
        tensors |= {f"ema.{k}": v.contiguous() for k, v in ema_model.state_dict().items()}
        tensors |= optimizer_tensors
        tensors["generator_state"] = generator.get_state()
        state = {
            "step": step,
            "wall_seconds": wall_seconds,
            "losses": losses,
            "optimizer_param_groups": groups,
            "identity": identity,
        }
        # One file holds tensors and state, so a crash can never pair one step's weights
        # with another step's counters.
        metadata = {"state": json.dumps(state)}
        atomic_write_bytes(checkpoint_path, save(tensors, metadata=metadata))

    def export() -> None:
        DiffusionGenerator(
            ema_model,
            classes=list(dataset.classes),
            image_size=image_size,
            schedule=schedule_config,
            training_record={
                "data": identity["data"],
                "steps": step,
                "wall_seconds": round(wall_seconds, 1),
                "final_loss": losses[-1]["loss"] if losses else None,
                **{k: v for k, v in asdict(training).items() if k not in ("steps", "checkpoint_every")},
            },
        ).save(out_dir)

    model.train()
    interval_loss, interval_steps = 0.0, 0
    stage = "train generator"
    report(progress, stage, step, training.steps, unit="steps")
    started = time.perf_counter()
    while step < training.steps:
        indices = torch.randint(0, images.shape[0], (training.batch_size,), generator=generator)
        warmup = min(1.0, (step + 1) / max(1, training.warmup_steps))
        for group in optimizer.param_groups:
            group["lr"] = training.learning_rate * warmup
        loss = diffusion.training_loss(
            model,
            images[indices].to(device),
            labels[indices].to(device),
            generator,
            training.class_dropout,
            model.null_class,
        )
        if not torch.isfinite(loss):
            raise TrainingError(
                f"generator loss became {loss.item()} at step {step}; "
                "train again into a new --out directory with a lower --learning-rate"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), training.max_grad_norm)
        optimizer.step()
        step += 1
        update_ema(ema_model, model, training.ema_decay, step)

        interval_loss += loss.item()
        interval_steps += 1
        report(progress, stage, step, training.steps, unit="steps", item=f"loss {loss.item():.4f}")
        if step % training.checkpoint_every == 0 or step == training.steps:
            now = time.perf_counter()
            wall_seconds += now - started
            started = now
            losses.append({"step": step, "loss": round(interval_loss / interval_steps, 5)})
            interval_loss, interval_steps = 0.0, 0
            save_checkpoint()
            export()
    report(progress, stage, step, training.steps, unit="steps", finished=True)
    if step == resumed_from:
        export()  # nothing left to train: make sure the export matches the checkpoint

    return TrainingResult(
        out_dir=out_dir,
        steps=step,
        resumed_from=resumed_from,
        wall_seconds=wall_seconds,
        final_loss=losses[-1]["loss"] if losses else float("nan"),
        num_parameters=sum(p.numel() for p in model.parameters()),
    )
