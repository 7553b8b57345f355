"""LoRA fine-tuning of a diffusers pipeline's UNet on a few real images per class.

DreamBooth-style (Ruiz et al. 2023) with low-rank adapters (Hu et al. 2022) as in DataDream
(Kim et al. 2024): every real image is paired with the prompt of its class
(``"a photo of a {label}"`` by default, the same template ``synthaug generate`` uses), the
text encoder and VAE stay frozen, and only rank-``r`` adapters on the UNet's attention
projections (``to_q``, ``to_k``, ``to_v``, ``to_out.0``) learn, with the pipeline's own
noise-prediction loss. The adapters are saved with the pipeline's ``save_lora_weights`` as
a standard diffusers LoRA (``pytorch_lora_weights.safetensors``), which
``synthaug generate --backend diffusers --model MODEL --lora OUT`` (or any diffusers
pipeline's ``load_lora_weights``) loads.

Real use needs a GPU: a Stable Diffusion 1.5 UNet step at 512x512 takes seconds on a GPU
and minutes on a CPU. Supported: pipelines with one text encoder and a UNet (Stable
Diffusion 1.x/2.x); SDXL, SD3 and FLUX need their own conditioning and are refused.

References:
    Hu et al. (2022), "LoRA: Low-Rank Adaptation of Large Language Models".
    Ruiz et al. (2023), "DreamBooth: Fine Tuning Text-to-Image Diffusion Models for
    Subject-Driven Generation".
    Kim et al. (2024), "DataDream: Few-shot Guided Dataset Generation".
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from synthaug.data import ImageDataset
from synthaug.errors import ConfigError
from synthaug.fileio import atomic_write_text
from synthaug.progress import ProgressCallback, report
from synthaug.runtime import pick_device

LORA_TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0")
RECORD_FILE = "lora.json"


@dataclass(frozen=True)
class LoraConfig:
    """Settings of :func:`train_lora`; saved beside the adapters in ``lora.json``."""

    # Optimisation steps.
    steps: int = 500
    # Images per step, drawn with replacement.
    batch_size: int = 4
    # AdamW learning rate of the adapters (DreamBooth-LoRA scripts use 1e-4).
    learning_rate: float = 1e-4
    # Rank of the adapters; lora_alpha equals it (scale 1).
    rank: int = 4
    # Prompt of every image, with {label} for its class name.
    prompt: str = "a photo of a {label}"
    # Seed of all training randomness.
    seed: int = 0


def train_lora(
    real: ImageDataset,
    model: str,
    out_dir: str | os.PathLike[str],
    config: LoraConfig | None = None,
    device: str | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Train LoRA adapters of ``model``'s UNet on ``real`` and save them to ``out_dir``.

    Args:
        real: The real images with their class names.
        model: Hub id or ``save_pretrained`` directory of a Stable Diffusion 1.x/2.x pipeline.
        out_dir: Folder of the saved LoRA.
        config: Training settings.
        device: Torch device (default :func:`synthaug.runtime.pick_device`).
        progress: Receives one event per step.

    Returns:
        The record written to ``OUT/lora.json`` (settings, data fingerprint, final loss, time).

    Raises:
        ConfigError: The model cannot be loaded or is not a single-text-encoder UNet pipeline.
    """
    import diffusers
    from peft import LoraConfig as PeftLoraConfig
    from peft.utils import get_peft_model_state_dict

    config = config or LoraConfig()
    if "{label}" not in config.prompt:
        raise ConfigError(f"--prompt {config.prompt!r} must contain {{label}} (DreamBooth prompts name the class)")
    torch_device = pick_device(device)
    try:
        pipeline = diffusers.DiffusionPipeline.from_pretrained(model, dtype=torch.float32)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot load diffusers model {model!r}: {error}") from error
    if getattr(pipeline, "unet", None) is None or getattr(pipeline, "text_encoder_2", None) is not None:
        raise ConfigError(
            f"{model!r} is a {type(pipeline).__name__}: LoRA training here supports Stable Diffusion 1.x/2.x "
            "pipelines (one text encoder and a UNet)"
        )
    unet, vae, text_encoder, tokenizer = pipeline.unet, pipeline.vae, pipeline.text_encoder, pipeline.tokenizer
    scheduler = diffusers.DDPMScheduler.from_config(pipeline.scheduler.config)
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False).to(torch_device)
    unet.add_adapter(
        PeftLoraConfig(r=config.rank, lora_alpha=config.rank, init_lora_weights="gaussian",
                       target_modules=list(LORA_TARGET_MODULES))  # fmt: skip
    )
    parameters = [parameter for parameter in unet.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate)

    side = int(unet.config.sample_size) * int(pipeline.vae_scale_factor)
    pixels = torch.tensor(real.as_array(size=(side, side), mode="RGB")).permute(0, 3, 1, 2).float() / 127.5 - 1
    prompts = [config.prompt.format(label=real.classes[target]) for target in real.targets]
    tokens = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                       return_tensors="pt").input_ids  # fmt: skip
    with torch.no_grad():
        text_states = text_encoder(tokens.to(torch_device))[0]

    generator = torch.Generator().manual_seed(config.seed)
    latent_generator = torch.Generator(torch_device).manual_seed(config.seed)
    unet.train()
    started = time.perf_counter()
    losses: list[float] = []
    for step in range(config.steps):
        batch = torch.randint(0, len(pixels), (config.batch_size,), generator=generator)
        with torch.no_grad():
            latents = vae.encode(pixels[batch].to(torch_device)).latent_dist.sample(generator=latent_generator)
            latents = latents * vae.config.scaling_factor
        noise = torch.randn(latents.shape, generator=generator).to(torch_device)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(batch),), generator=generator)
        timesteps = timesteps.to(torch_device)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        if scheduler.config.prediction_type == "v_prediction":
            target = scheduler.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        prediction = unet(noisy, timesteps, text_states[batch.to(torch_device)]).sample
        loss = torch.nn.functional.mse_loss(prediction.float(), target.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        losses.append(loss.item())
        report(progress, "lora", step + 1, config.steps)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from diffusers.utils import convert_state_dict_to_diffusers

    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    type(pipeline).save_lora_weights(save_directory=str(out), unet_lora_layers=layers, safe_serialization=True)
    tail = losses[-min(50, len(losses)) :] or [float("nan")]
    record = {
        "model": model,
        "pipeline": type(pipeline).__name__,
        "settings": asdict(config),
        "data": real.name,
        "data_fingerprint": real.fingerprint(),
        "images_per_class": {name: count for name, count in real.class_counts().items() if count},
        "final_loss": sum(tail) / len(tail),
        "seconds": round(time.perf_counter() - started, 2),
        "device": str(torch_device),
    }
    atomic_write_text(out / RECORD_FILE, json.dumps(record, indent=2) + "\n")
    return record
