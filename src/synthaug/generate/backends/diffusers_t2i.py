"""Any Hugging Face ``diffusers`` text-to-image pipeline: Stable Diffusion 1.x/2.x, SDXL, SD3, FLUX...

``model`` is a hub id or a local directory written by ``save_pretrained``. It is loaded
with ``AutoPipelineForText2Image.from_pretrained`` (which picks the right pipeline class)
or, for a pipeline the auto class does not know, ``DiffusionPipeline.from_pretrained``.
Loading happens on the first :meth:`DiffusersBackend.generate` call, so planning and
``--dry-run`` stay cheap.

Parameters: ``steps`` (``num_inference_steps``), ``guidance_scale``, ``negative_prompt`` and
``size`` (``WIDTHxHEIGHT``, both multiples of 8; default: the pipeline's own). Options:
``device`` (default :func:`synthaug.runtime.pick_device`), ``dtype`` (``float32``,
``float16``, ``bfloat16``; default float16 on CUDA, else float32) and ``batch_size``
(prompts per pipeline call, default 4), and ``lora``: a LoRA folder or ``.safetensors`` file
(as written by ``synthaug train-generator --backend diffusers`` or any diffusers LoRA
trainer) loaded into the pipeline with ``load_lora_weights``.

Guided requests (an ``init_image`` and a ``strength`` below 1) go through the image-to-image
pipeline of the same model (``AutoPipelineForImage2Image.from_pipe``, sharing the loaded
weights and the LoRA), with ``strength=``, batched like text-to-image; the real image is
resized to the output size. ``strength = 1`` is text-to-image. The image-to-image pipeline
runs ``int(steps * strength)`` denoising steps.

Seeds: every image gets its own CPU ``torch.Generator`` seeded with its request's seed, and
the pipeline receives the list of them, so each image's starting latent (and any noise a
stochastic scheduler adds) is drawn from its own generator: the same seed and settings
give the same image. The pipeline's safety checker is left as the model ships it; when it
flags an image, the flag is recorded in the manifest row (``extra.nsfw_content_detected``)
and the image (which the checker may have blacked out) is kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import diffusers
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
from synthaug.runtime import pick_device

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEFAULT_BATCH_SIZE = 4
# File name diffusers' save_lora_weights writes inside a LoRA folder.
LORA_WEIGHTS_FILE = "pytorch_lora_weights.safetensors"


class DiffusersBackend(GeneratorBackend):
    """Text-to-image generation with a ``diffusers`` pipeline.

    Args:
        model: Hub id or local pipeline directory (default
            ``stable-diffusion-v1-5/stable-diffusion-v1-5``).
        device: Torch device.
        dtype: ``float32``, ``float16`` or ``bfloat16``.
        batch_size: Prompts per pipeline call.
    """

    name = "diffusers"
    supported_params = frozenset({"steps", "guidance_scale", "negative_prompt", "size"})
    supported_options = frozenset({"device", "dtype", "batch_size", "lora"})
    max_batch_size = DEFAULT_BATCH_SIZE
    supports_init_images = True

    def __init__(self, model: str | None = None, **options: Any) -> None:
        super().__init__(str(model) if model is not None else DEFAULT_MODEL, **options)
        self.device = pick_device(options.get("device"))
        dtype = options.get("dtype") or ("float16" if self.device.type == "cuda" else "float32")
        if dtype not in DTYPES:
            raise ConfigError(f"dtype {dtype!r} is not supported; choose one of: {', '.join(DTYPES)}")
        self.dtype_name = dtype
        self.batch_size = check_positive_int("batch_size", options.get("batch_size", DEFAULT_BATCH_SIZE))
        self.lora = Path(options["lora"]) if options.get("lora") is not None else None
        if self.lora is not None and not self.lora.exists():
            raise ConfigError(f"--lora {self.lora}: no such file or folder; give a LoRA saved by train-generator")
        self._pipeline: Any = None
        self._image_to_image: Any = None

    def check_ready(self) -> None:
        """The pipeline's ``model_index.json`` can be had (a local folder, the Hugging Face cache
        or the hub): a wrong id, or a machine offline without the model cached, is found before
        the output folder is made, without loading gigabytes of weights on a driver whose workers
        generate (an offline hub lookup failed after ~25 s of retries inside the first batch)."""
        folder = Path(self.model)
        if folder.is_dir():
            if not (folder / "model_index.json").is_file():
                raise ConfigError(f"{self.model}: no model_index.json; give a directory written by save_pretrained")
            return
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:
            hf_hub_download(self.model, "model_index.json")
        except (OSError, EntryNotFoundError, ValueError) as error:  # not found, gated, offline, bad id
            reason = (str(error).splitlines() or [""])[0]
            raise ConfigError(
                f"cannot find diffusers model {self.model!r} ({type(error).__name__}: {reason}); give a hub id with "
                "the hub reachable or the model in the Hugging Face cache, or a directory written by save_pretrained"
            ) from error

    @property
    def pipeline(self) -> Any:
        """The loaded pipeline (loaded on first use).

        Raises:
            ConfigError: The model cannot be found or is not a diffusers pipeline.
        """
        if self._pipeline is None:
            self._pipeline = self._load()
        return self._pipeline

    def _load(self) -> Any:
        dtype = DTYPES[self.dtype_name]
        try:
            try:
                pipeline = diffusers.AutoPipelineForText2Image.from_pretrained(self.model, dtype=dtype)
            except ValueError:
                # The auto class maps only known text-to-image families; anything else that
                # is still a diffusers pipeline loads through the generic entry point.
                pipeline = diffusers.DiffusionPipeline.from_pretrained(self.model, dtype=dtype)
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"cannot load diffusers model {self.model!r}: {error}; give a hub id or a directory "
                "written by save_pretrained"
            ) from error
        pipeline = pipeline.to(self.device)
        pipeline.set_progress_bar_config(disable=True)
        if self.lora is not None:
            try:
                pipeline.load_lora_weights(str(self.lora))
            except (OSError, ValueError, KeyError) as error:
                raise ConfigError(f"--lora {self.lora}: cannot load it into {self.model!r} ({error})") from error
        return pipeline

    @property
    def image_to_image(self) -> Any:
        """The image-to-image pipeline sharing the text-to-image pipeline's components.

        Raises:
            ConfigError: The model family has no image-to-image pipeline.
        """
        if self._image_to_image is None:
            try:
                self._image_to_image = diffusers.AutoPipelineForImage2Image.from_pipe(self.pipeline)
            except ValueError as error:
                raise ConfigError(
                    f"diffusers model {self.model!r} has no image-to-image pipeline for --init-images ({error})"
                ) from error
            self._image_to_image.set_progress_bar_config(disable=True)
        return self._image_to_image

    def validate(self, params: Mapping[str, Any]) -> None:
        """Check ``steps`` (>= 1), ``guidance_scale`` (>= 0), ``negative_prompt`` (text) and
        ``size`` (multiples of 8)."""
        super().validate(params)
        check_denoising_params(params)
        negative_prompt = params.get("negative_prompt")
        if negative_prompt is not None and not isinstance(negative_prompt, str):
            raise ConfigError(f"negative_prompt must be text, got {negative_prompt!r}")
        size = params.get("size")
        if size is not None:
            width, height = parse_size(size)
            if width % 8 or height % 8:
                raise ConfigError(f"size {size!r}: diffusers pipelines need width and height divisible by 8")

    def describe(self) -> dict[str, Any]:
        description = {
            "backend": self.name,
            "model": self.model,
            "diffusers_version": diffusers.__version__,
            "dtype": self.dtype_name,
            "device": str(self.device),
        }
        index_file = Path(self.model) / "model_index.json"
        if self.lora is not None:
            weights = self.lora / LORA_WEIGHTS_FILE if self.lora.is_dir() else self.lora
            digest = sha256_file(weights) if weights.is_file() else None
            description["lora"] = {"path": str(self.lora), "sha256": digest}
        if index_file.is_file():  # a local directory: record which pipeline family it holds
            try:
                description["pipeline"] = json.loads(index_file.read_text()).get("_class_name")
            except ValueError as error:
                raise ConfigError(f"{index_file}: unreadable ({error})") from error
        return description

    def generate(self, requests: Sequence[ImageRequest]) -> Iterator[GeneratedImage]:
        requests = list(requests)
        for request in requests:
            self.validate(request.params)
        if not requests:
            return
        # Requests with the same settings share pipeline calls; each call gets one prompt and
        # one generator per image.
        groups: dict[tuple, list[ImageRequest]] = {}
        for request in requests:
            params = request.params
            guided = request.init_image is not None and request.strength is not None and request.strength < 1
            strength = float(request.strength) if guided else None
            key = (params.get("steps"), params.get("guidance_scale"), params.get("negative_prompt"),
                   params.get("size"), strength)  # fmt: skip
            groups.setdefault(key, []).append(request)
        for (steps, guidance_scale, negative_prompt, size, strength), group in groups.items():
            pipeline = self.pipeline if strength is None else self.image_to_image
            call_options: dict[str, Any] = {"output_type": "pil"}
            if steps is not None:
                call_options["num_inference_steps"] = steps
            if guidance_scale is not None:
                call_options["guidance_scale"] = float(guidance_scale)
            if strength is None and size is not None:
                call_options["width"], call_options["height"] = parse_size(size)
            if strength is not None:
                call_options["strength"] = strength
                output_size = parse_size(size) if size is not None else self._default_size()
            for start in range(0, len(group), self.batch_size):
                batch = group[start : start + self.batch_size]
                if negative_prompt is not None:
                    call_options["negative_prompt"] = [negative_prompt] * len(batch)
                generators = [torch.Generator("cpu").manual_seed(request.seed) for request in batch]
                started = time.perf_counter()
                try:
                    prompts = [request.prompt for request in batch]
                    if strength is not None:
                        call_options["image"] = [
                            request.init_image.image.convert("RGB").resize(output_size, Image.Resampling.BICUBIC)
                            for request in batch
                        ]
                    output = pipeline(prompt=prompts, generator=generators, **call_options)
                except (ValueError, TypeError) as error:
                    # The pipeline's own argument checks (a size its VAE cannot make, a
                    # parameter this pipeline family does not take).
                    raise ConfigError(f"diffusers pipeline {self.model!r} refused the settings: {error}") from error
                seconds_per_image = (time.perf_counter() - started) / len(batch)
                flags = getattr(output, "nsfw_content_detected", None)
                for position, (request, image) in enumerate(zip(batch, output.images, strict=True)):
                    extra: dict[str, Any] = {
                        "pipeline": type(pipeline).__name__,
                        "seconds": round(seconds_per_image, 4),
                    }
                    if strength is not None:
                        extra["strength"] = strength
                    if flags is not None:
                        extra["nsfw_content_detected"] = bool(flags[position])
                    yield GeneratedImage(request=request, image=image.convert("RGB"), extra=extra)

    def _default_size(self) -> tuple[int, int]:
        """The pipeline's native ``(width, height)``: the UNet's sample size times the VAE factor."""
        pipeline = self.pipeline
        side = int(pipeline.unet.config.sample_size) * int(pipeline.vae_scale_factor)
        return side, side
