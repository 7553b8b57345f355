"""A trained class-conditional diffusion generator: load, save and sample.

A generator directory holds ``model.safetensors`` (the EMA weights, stored as float16 to
keep the shipped file small; sampling runs in float32) and ``config.json`` (classes, image
size and channels, the architecture, the noise schedule, the default sampling settings and
a record of how it was trained). No pickle.

The generator shipped with synthaug lives in the package (``synthaug/assets/
ddpm-fashion-mnist``) and is found with :func:`default_generator_dir`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save

from synthaug.errors import ConfigError
from synthaug.fileio import atomic_write_bytes, atomic_write_text
from synthaug.generate.ddpm.schedule import SOLVERS, DiffusionSchedule, ScheduleConfig, Solver
from synthaug.generate.ddpm.unet import ClassConditionalUNet, UNetConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "synthaug-ddpm"
# Sampling defaults, chosen on the shipped Fashion-MNIST generator (see its CARD.md): the
# second-order DPM-Solver++(2M) at 6 steps keeps the quality of 10 DDIM steps at 0.6x the
# network evaluations, guidance makes each image clearly its class.
DEFAULT_SOLVER = "dpm-solver++2m"
DEFAULT_STEPS = 6
DEFAULT_GUIDANCE_SCALE = 2.0
# Images per forward pass while sampling (doubled internally for guidance) on an accelerator,
# and the most requests the ddpm backend takes per call.
DEFAULT_SAMPLING_BATCH = 256
# The same on a CPU, where a small batch keeps the activations in cache: 64 images made
# 1.35x the images/s of 256 on one core and 1.38x on two (benchmarks/ddpm_speed.py).
CPU_SAMPLING_BATCH = 64


def default_sampling_batch(device: torch.device | str) -> int:
    """Images per forward pass for ``device``: :data:`CPU_SAMPLING_BATCH` on a CPU, else
    :data:`DEFAULT_SAMPLING_BATCH`."""
    return CPU_SAMPLING_BATCH if torch.device(device).type == "cpu" else DEFAULT_SAMPLING_BATCH


def default_generator_dir() -> Path:
    """The generator shipped with synthaug (Fashion-MNIST, 10 classes, 28x28 grayscale)."""
    return Path(str(files("synthaug") / "assets" / "ddpm-fashion-mnist"))


def read_generator_config(directory: Path) -> dict[str, Any]:
    """The ``config.json`` of a generator directory, checked to be one (weights not loaded).

    Raises:
        ConfigError: ``directory`` lacks ``config.json`` or ``model.safetensors``, or its
            config is not a synthaug ddpm generator's.
    """
    config_path = directory / CONFIG_FILE
    if not config_path.is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise ConfigError(
            f"{directory} is not a ddpm generator (needs {CONFIG_FILE} and {WEIGHTS_FILE}); "
            "train one with `synthaug train-generator --data DATA --out DIR`"
        )
    try:
        config = json.loads(config_path.read_text())
    except ValueError as error:
        raise ConfigError(f"{config_path}: unreadable JSON ({error})") from error
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ConfigError(f"{config_path}: not a ddpm generator config (its format is not {FORMAT!r})")
    missing = [key for key in ("classes", "image_size", "unet", "schedule") if key not in config]
    if missing:
        raise ConfigError(f"{config_path}: lacks {', '.join(missing)}")
    return config


def seeded_noise(seeds: Sequence[int], shape: tuple[int, ...]) -> torch.Tensor:
    """One standard-normal tensor of ``shape`` per seed, stacked: ``(len(seeds), *shape)``.

    Each image draws from its own ``torch.Generator`` so it depends on its seed alone,
    never on which other images share its batch.
    """
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(seed))) for seed in seeds])


class DiffusionGenerator:
    """A class-conditional diffusion model ready to sample.

    Args:
        unet: The trained network (normally the EMA weights).
        classes: Class names, in the network's label order.
        image_size: Side of the square images.
        schedule: The noise schedule it was trained with.
        training_record: How it was trained (data, steps, seed, ...), saved for provenance.
        sampling_defaults: ``{"solver": ..., "steps": ..., "guidance_scale": ...}`` used
            when ``sample`` is called without them.
    """

    def __init__(
        self,
        unet: ClassConditionalUNet,
        classes: Sequence[str],
        image_size: int,
        schedule: ScheduleConfig,
        training_record: dict[str, Any] | None = None,
        sampling_defaults: dict[str, Any] | None = None,
    ) -> None:
        if len(classes) != unet.config.num_classes:
            raise ConfigError(
                f"the generator has {unet.config.num_classes} classes but {len(classes)} class names"
            )
        self.unet = unet
        self.classes = list(classes)
        self.image_size = image_size
        self.schedule_config = schedule
        self.diffusion = DiffusionSchedule(schedule)
        self.training_record = training_record or {}
        self.sampling_defaults = sampling_defaults or {
            "solver": DEFAULT_SOLVER,
            "steps": DEFAULT_STEPS,
            "guidance_scale": DEFAULT_GUIDANCE_SCALE,
        }

    @property
    def default_solver(self) -> Solver:
        """The solver of ``sampling_defaults``; ``"ddim"`` for a config that names none (the
        solver every generator was sampled with before DPM-Solver++ was added)."""
        solver = self.sampling_defaults.get("solver", "ddim")
        if solver not in SOLVERS:
            raise ConfigError(
                f"sampling solver {solver!r} in the generator config is unknown; use one of {', '.join(SOLVERS)}"
            )
        return solver

    @property
    def image_channels(self) -> int:
        return self.unet.config.image_channels

    @property
    def num_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.unet.parameters())

    def config(self) -> dict[str, Any]:
        """The JSON-serialisable description written to ``config.json``."""
        return {
            "format": FORMAT,
            "classes": self.classes,
            "image_size": self.image_size,
            "image_channels": self.image_channels,
            "unet": self.unet.config.to_dict(),
            "schedule": self.schedule_config.to_dict(),
            "sampling": self.sampling_defaults,
            "training": self.training_record,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` (float16) and ``config.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = {
            name: value.detach().to(torch.float16).contiguous() for name, value in self.unet.state_dict().items()
        }
        atomic_write_bytes(directory / WEIGHTS_FILE, save(weights))
        atomic_write_text(directory / CONFIG_FILE, json.dumps(self.config(), indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> DiffusionGenerator:
        """Load a generator directory (default: the one shipped with synthaug).

        Raises:
            ConfigError: The directory is not a synthaug ddpm generator.
        """
        directory = Path(directory) if directory is not None else default_generator_dir()
        config = read_generator_config(directory)
        try:
            unet = ClassConditionalUNet(UNetConfig.from_dict(config["unet"]))
            weights = load_file(str(directory / WEIGHTS_FILE))
            unet.load_state_dict({name: value.float() for name, value in weights.items()})
            schedule = ScheduleConfig.from_dict(config["schedule"])
        except (ValueError, KeyError, TypeError, RuntimeError) as error:
            raise ConfigError(f"{directory} holds an unreadable ddpm generator: {error}") from error
        unet = unet.to(device).eval().to(memory_format=torch.channels_last)
        return cls(
            unet,
            classes=config["classes"],
            image_size=config["image_size"],
            schedule=schedule,
            training_record=config.get("training"),
            sampling_defaults=config.get("sampling"),
        )

    def class_index(self, label: str | int) -> int:
        """The class index of ``label`` (an index or a class name, case-insensitive).

        Raises:
            ConfigError: ``label`` is not one of this generator's classes (the message
                lists them).
        """
        if isinstance(label, int | np.integer):
            if 0 <= label < len(self.classes):
                return int(label)
        else:
            by_name = {name.casefold(): index for index, name in enumerate(self.classes)}
            if label.casefold() in by_name:
                return by_name[label.casefold()]
        raise ConfigError(
            f"class {label!r} is unknown to this ddpm generator; it knows: {', '.join(self.classes)}"
        )

    def class_in_prompt(self, prompt: str) -> int | None:
        """The one class this generator knows that ``prompt`` names, or ``None`` if none.

        A class is named when its name appears as a whole word, case-insensitive
        (``"a photo of a Trouser"`` -> ``Trouser``). A match that lies inside a longer
        match is ignored (``"T-shirt/top"`` names ``T-shirt/top``, not also ``Shirt``).

        Raises:
            ConfigError: The prompt names more than one class.
        """
        spans = []
        for index, name in enumerate(self.classes):
            pattern = rf"(?<!\w){re.escape(name.casefold())}(?!\w)"
            spans += [(m.start(), m.end(), index) for m in re.finditer(pattern, prompt.casefold())]
        outermost = {
            index
            for start, end, index in spans
            if not any(s <= start and end <= e and (s, e) != (start, end) for s, e, _ in spans)
        }
        if len(outermost) > 1:
            named = ", ".join(self.classes[index] for index in sorted(outermost))
            raise ConfigError(f"prompt {prompt!r} names several classes ({named}); name one")
        return outermost.pop() if outermost else None

    def sample(
        self,
        labels: Sequence[str | int],
        seeds: Sequence[int],
        steps: int | None = None,
        guidance_scale: float | Sequence[float] | None = None,
        batch_size: int | None = None,
        solver: Solver | None = None,
    ) -> np.ndarray:
        """Generate one image per ``(label, seed)``.

        The same seed and label give the same image whatever else is in the call.

        Args:
            labels: Class names or indices, length ``N``.
            seeds: One seed per image, length ``N``.
            steps: Solver steps (default from ``config.json``).
            guidance_scale: Classifier-free guidance scale, one for all images or one per
                image; 1 turns guidance off (default from ``config.json``).
            batch_size: Images per forward pass; changes speed and memory only (default:
                :func:`default_sampling_batch` of the model's device).
            solver: ``"ddim"`` or ``"dpm-solver++2m"`` (default from ``config.json``; see
                :meth:`~synthaug.generate.ddpm.schedule.DiffusionSchedule.sample`).

        Returns:
            ``uint8`` array ``(N, image_size, image_size, image_channels)``.
        """
        if len(labels) != len(seeds):
            raise ConfigError(f"got {len(labels)} labels but {len(seeds)} seeds; give one seed per image")
        steps = int(steps if steps is not None else self.sampling_defaults["steps"])
        if guidance_scale is None:
            guidance_scale = self.sampling_defaults["guidance_scale"]
        solver = solver or self.default_solver
        scales = torch.as_tensor(guidance_scale, dtype=torch.float32).expand(len(seeds))
        indices = torch.tensor([self.class_index(label) for label in labels], dtype=torch.long)
        device = next(self.unet.parameters()).device
        batch_size = batch_size or default_sampling_batch(device)
        shape = (self.image_channels, self.image_size, self.image_size)
        self.unet.eval()
        outputs = []
        for start in range(0, len(indices), batch_size):
            noise = seeded_noise(seeds[start : start + batch_size], shape).to(device)
            images = self.diffusion.sample(
                self.unet,
                noise.contiguous(memory_format=torch.channels_last),
                indices[start : start + batch_size].to(device),
                steps=steps,
                guidance_scale=scales[start : start + batch_size].to(device),
                null_class=self.unet.null_class,
                solver=solver,
            )
            pixels = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
            outputs.append(pixels.permute(0, 2, 3, 1).cpu().numpy())
        if not outputs:
            return np.zeros((0, self.image_size, self.image_size, self.image_channels), np.uint8)
        return np.concatenate(outputs)
