"""A tiny, randomly initialised Stable Diffusion pipeline built offline, for tests and benchmarks.

The components follow the sizes of diffusers' own fast tests (``get_dummy_components`` in
``tests/pipelines/stable_diffusion``): a 2-level UNet with 4/8 channels, a 2-level VAE and
a 2-layer CLIP text encoder. The CLIP tokenizer is written from a byte-level vocabulary
(every byte as a token, with and without the end-of-word mark ``</w>``) and an empty merge
list, so nothing is downloaded. Saved with ``save_pretrained`` so the backend loads it
through the real ``from_pretrained`` path.

Used by ``tests/generate`` (a session fixture) and ``benchmarks/generate.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# Side of the images the tiny pipeline makes by default (latent 8x8, VAE factor 2).
TINY_IMAGE_SIZE = 16


def _byte_level_vocabulary() -> dict[str, int]:
    # The byte -> printable character table of GPT-2/CLIP byte-level BPE.
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    symbols = [chr(c) for c in characters]
    tokens = ["<|startoftext|>", "<|endoftext|>"] + symbols + [s + "</w>" for s in symbols]
    return {token: index for index, token in enumerate(tokens)}


def build_tiny_pipeline(directory: str | Path, seed: int = 0) -> Path:
    """Build a tiny Stable Diffusion pipeline and ``save_pretrained`` it to ``directory``.

    Returns:
        ``directory``, loadable with ``DiffusionPipeline.from_pretrained``.
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    directory = Path(directory)
    tokenizer_dir = directory / "tokenizer-source"
    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    vocabulary = _byte_level_vocabulary()
    (tokenizer_dir / "vocab.json").write_text(json.dumps(vocabulary))
    (tokenizer_dir / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir, model_max_length=77)
    shutil.rmtree(tokenizer_dir)

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=TINY_IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(4, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=2,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(vocabulary),
        )
    )
    scheduler = DDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False, steps_offset=1
    )
    pipeline = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(directory)
    return directory
