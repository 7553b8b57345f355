"""The embedded offline generator: a small class-conditional diffusion model trained by synthaug.

``model`` is a generator directory written by ``synthaug train-generator`` (or
:func:`synthaug.generate.ddpm.train.train_generator`); the default is the Fashion-MNIST
generator shipped inside the package (see ``synthaug/assets/ddpm-fashion-mnist/CARD.md``).

Which class is drawn: the model knows only the classes it was trained on, so a text
prompt cannot steer it. The request's label picks the class when it is one of the
model's class names (case-insensitive); otherwise the prompt must name exactly one of them
as a whole word (``"a photo of a Trouser"`` -> ``Trouser``; the longest name wins where
one contains another, so ``"a T-shirt/top"`` is ``T-shirt/top``, not ``Shirt``). Any other
label is a :class:`~synthaug.errors.ConfigError` that lists the known classes, raised
before any image is made.

Parameters: ``steps`` (DDIM steps), ``guidance_scale`` (classifier-free guidance, 1 = off)
and ``size``, which must be the model's own (``28x28`` for the shipped one). Options:
``device`` and ``batch_size`` (images per forward pass).

Each image starts from noise drawn from its own ``torch.Generator`` seeded with the
request's seed, and DDIM sampling (eta = 0) is deterministic after that, so the same seed
and class give the same image however the requests are batched.

Guided requests (an ``init_image`` with a ``strength`` ``s``) use SDEdit (Meng et al. 2022):
the real image, converted to the model's size and channels, is noised with the seeded
noise to ``t = s T`` and denoised from there with the request's class and guidance, over
``round(s * steps)`` DDIM steps spaced on ``[0, s T)`` (as diffusers' image-to-image
pipelines count them, so a variant costs ``s`` of a text-to-image sample). ``s = 1`` is
exactly text-to-image with the same seed; as ``s -> 0`` the output tends to the real image.

References:
    Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models".
    Song, Meng & Ermon (2021), "Denoising Diffusion Implicit Models".
    Ho & Salimans (2022), "Classifier-Free Diffusion Guidance".
    Meng et al. (2022), "SDEdit: Guided Image Synthesis and Editing with Stochastic
    Differential Equations".
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from synthaug.errors import ConfigError
from synthaug.fileio import sha256_file
from synthaug.generate.backends.base import (
    GeneratedImage,
    GeneratorBackend,
    ImageRequest,
    check_denoising_params,
    check_positive_int,
    parse_size,
)
from synthaug.generate.ddpm.pipeline import (
    DEFAULT_SAMPLING_BATCH,
    WEIGHTS_FILE,
    DiffusionGenerator,
    default_generator_dir,
    default_sampling_batch,
    read_generator_config,
    seeded_noise,
)
from synthaug.generate.ddpm.schedule import SOLVERS
from synthaug.runtime import pick_device

SHIPPED_MODEL_NAME = "synthaug/ddpm-fashion-mnist"
MAX_STEPS = 1000


class DDPMBackend(GeneratorBackend):
    """Class-conditional DDPM generator sampled with DDIM and classifier-free guidance.

    Args:
        model: Generator directory; ``None`` (or ``"synthaug/ddpm-fashion-mnist"``) is the
            one shipped with synthaug.
        device: Torch device (default: :func:`synthaug.runtime.pick_device`).
        batch_size: Images per forward pass (default 64 on a CPU, 256 on an accelerator).
    """

    name = "ddpm"
    supported_params = frozenset({"steps", "guidance_scale", "size", "solver"})
    supported_options = frozenset({"device", "batch_size"})
    max_batch_size = DEFAULT_SAMPLING_BATCH
    supports_init_images = True

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(model, **options)
        self.directory = default_generator_dir() if model in (None, SHIPPED_MODEL_NAME) else Path(model)
        self.config = read_generator_config(self.directory)
        self.classes: list[str] = list(self.config["classes"])
        self.image_size = int(self.config["image_size"])
        self.device = pick_device(options.get("device"))
        self.batch_size = check_positive_int(
            "batch_size", options.get("batch_size", default_sampling_batch(self.device))
        )
        self._generator: DiffusionGenerator | None = None
        self._weights_sha256: str | None = None

    @property
    def generator(self) -> DiffusionGenerator:
        """The loaded model (loaded on first use)."""
        if self._generator is None:
            self._generator = DiffusionGenerator.load(self.directory, device=self.device)
        return self._generator

    def validate(self, params: Mapping[str, Any]) -> None:
        """Check ``steps`` (1..1000), ``guidance_scale`` (>= 0), ``size`` (the model's own) and ``solver``."""
        super().validate(params)
        check_denoising_params(params, max_steps=MAX_STEPS)
        solver = params.get("solver")
        if solver is not None and solver not in SOLVERS:
            raise ConfigError(f"solver {solver!r} is unknown to the ddpm backend; use one of {', '.join(SOLVERS)}")
        size = params.get("size")
        if size is not None and parse_size(size) != (self.image_size, self.image_size):
            raise ConfigError(
                f"size {size!r} is not available: this ddpm generator makes "
                f"{self.image_size}x{self.image_size} images only"
            )

    def estimate_seconds(self, n_images: int) -> float | None:
        # The shipped generator at default settings made 23 images/s on one shared CPU core
        # and 37 on two (see its CARD.md); a CPU estimate errs on the slow side.
        return n_images / 20.0

    def describe(self) -> dict[str, Any]:
        if self._weights_sha256 is None:
            self._weights_sha256 = sha256_file(self.directory / WEIGHTS_FILE)
        return {
            "backend": self.name,
            "model": SHIPPED_MODEL_NAME if self.directory == default_generator_dir() else str(self.model),
            "weights_sha256": self._weights_sha256,
            "classes": self.classes,
            "image_size": self.image_size,
            "sampling_defaults": self.config.get("sampling", {}),
            "device": str(self.device),
        }

    def check_request(self, request: ImageRequest) -> None:
        """Refuse a class the model does not know (see :meth:`class_of`)."""
        self.class_of(request)

    def class_of(self, request: ImageRequest) -> int:
        """The model class a request asks for (see the module docstring for the rule).

        Raises:
            ConfigError: Neither the label nor the prompt names one of the model's classes.
        """
        generator = self.generator
        known = {name.casefold(): index for index, name in enumerate(generator.classes)}
        if request.label.casefold() in known:
            return known[request.label.casefold()]
        named = generator.class_in_prompt(request.prompt)
        if named is None:
            raise ConfigError(
                f"class {request.label!r} is unknown to the ddpm generator {self.describe()['model']}; "
                f"it knows: {', '.join(generator.classes)} (or train one on your classes with "
                "`synthaug train-generator`)"
            )
        return named

    def generate(self, requests: Sequence[ImageRequest]) -> Iterator[GeneratedImage]:
        requests = list(requests)
        for request in requests:
            self.validate(request.params)
        # Every label is resolved before the first image so a bad one fails the run at once.
        class_indices = [self.class_of(request) for request in requests]
        defaults = self.generator.sampling_defaults
        guidance_scales = [float(r.params.get("guidance_scale", defaults["guidance_scale"])) for r in requests]
        # Requests with the same number of steps (and SDEdit strength) are sampled together,
        # in request order; the guidance scale may differ per image (a randomised range).
        groups: dict[tuple[int, float], list[int]] = {}
        for position, request in enumerate(requests):
            steps = int(request.params.get("steps", defaults["steps"]))
            guided = request.init_image is not None and request.strength is not None and request.strength < 1
            groups.setdefault((steps, float(request.strength) if guided else 1.0), []).append(position)
        for (steps, strength), positions in groups.items():
            for start in range(0, len(positions), self.batch_size):
                batch = positions[start : start + self.batch_size]
                started = time.perf_counter()
                if strength < 1:
                    pixels = sdedit(
                        self.generator,
                        np.stack([self._model_pixels(requests[i].init_image.image) for i in batch]),
                        [class_indices[i] for i in batch],
                        [requests[i].seed for i in batch],
                        strength=strength,
                        steps=steps,
                        guidance_scale=[guidance_scales[i] for i in batch],
                    )
                else:
                    pixels = self.generator.sample(
                        [class_indices[i] for i in batch],
                        [requests[i].seed for i in batch],
                        steps=steps,
                        guidance_scale=[guidance_scales[i] for i in batch],
                        batch_size=self.batch_size,
                    )
                seconds_per_image = (time.perf_counter() - started) / len(batch)
                for i, image in zip(batch, pixels, strict=True):
                    yield GeneratedImage(
                        request=requests[i],
                        image=Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image),
                        extra={
                            "class": self.generator.classes[class_indices[i]],
                            "steps": steps,
                            **({"strength": strength} if requests[i].init_image is not None else {}),
                            "guidance_scale": guidance_scales[i],
                            "seconds": round(seconds_per_image, 5),
                        },
                    )

    def _model_pixels(self, image: Image.Image) -> np.ndarray:
        """A real image as the model's uint8 ``(H, W, C)``: its channels, its size (bilinear)."""
        mode = "L" if self.generator.image_channels == 1 else "RGB"
        image = image.convert(mode)
        if image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.uint8)
        return pixels[..., None] if pixels.ndim == 2 else pixels


def sdedit_timesteps(num_train_timesteps: int, steps: int, strength: float) -> list[int]:
    """``round(strength * steps)`` (at least 1) decreasing timesteps, trailing spacing on ``[0, strength T)``.

    ``steps`` counts the whole schedule, as text-to-image does; the first timestep,
    ``round(strength T) - 1``, is where the real image is noised to.
    """
    start = max(1, round(strength * num_train_timesteps))
    steps = min(max(1, round(strength * steps)), start)
    spaced = torch.linspace(start, 0, steps + 1, dtype=torch.float64)[:-1].round().long() - 1
    return spaced.tolist()


def sdedit(
    generator: DiffusionGenerator,
    images: np.ndarray,
    labels: Sequence[int],
    seeds: Sequence[int],
    strength: float,
    steps: int,
    guidance_scale: float | Sequence[float],
) -> np.ndarray:
    """SDEdit (Meng et al. 2022): noise real images to ``t = strength T``, denoise to their class.

    Args:
        generator: The loaded diffusion model.
        images: Real images as uint8 ``(N, H, W, C)`` at the model's size and channels.
        labels: Class index per image ``(N,)``.
        seeds: Seed per image; its noise is drawn as in text-to-image sampling.
        strength: In ``(0, 1)``; the share of the diffusion the real image goes through.
        steps: DDIM steps of the whole schedule; ``round(strength * steps)`` are run.
        guidance_scale: Classifier-free guidance scale, one or one per image.

    Returns:
        uint8 ``(N, H, W, C)``.
    """
    device = next(generator.unet.parameters()).device
    diffusion = generator.diffusion
    timesteps = sdedit_timesteps(diffusion.config.num_train_timesteps, steps, strength)
    clean = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    noise = seeded_noise(seeds, tuple(clean.shape[1:]))
    alpha_bar = diffusion.alpha_bar[timesteps[0]]
    noisy = alpha_bar.sqrt() * clean + (1 - alpha_bar).sqrt() * noise
    scales = torch.as_tensor(guidance_scale, dtype=torch.float32).expand(len(seeds))
    generator.unet.eval()
    result = diffusion.sample(
        generator.unet,
        noisy.to(device).contiguous(memory_format=torch.channels_last),
        torch.as_tensor(list(labels), dtype=torch.long, device=device),
        steps=len(timesteps),
        guidance_scale=scales.to(device),
        null_class=generator.unet.null_class,
        timesteps=timesteps,
        solver=generator.default_solver,  # the same solver as text-to-image sampling
    )
    pixels = ((result + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()
