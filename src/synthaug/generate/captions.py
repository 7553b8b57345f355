"""Caption prompts: captions of the user's real images joined to the class name (Lei et al. 2023).

A template prompt says nothing about what the real images of a class look like; a caption of
each real image does ("a man in a black jacket standing on a street"). Lei et al. (2023)
caption the real training images with BLIP and prompt the generator with
``"a photo of a {label}, {caption}"``, which they report as about +10 points of accuracy for
classifiers trained on synthetic images alone (ImageNet subsets).

:func:`caption_images` captions every image of an :class:`~synthaug.data.ImageDataset` with a
local captioning model (a ``transformers`` image-text-to-text model such as
``Salesforce/blip-image-captioning-base``, from a folder written by ``save_pretrained`` or a
hub id), greedy decoding, batched. Captions are cached by the image's content (the sha256 of
its decoded RGB pixels and size, the digest of :func:`synthaug.data.digest.pixel_digests`) and the
model, in a JSON-lines file, so a rerun, or another run over the same images, captions
nothing twice. :func:`caption_prompt_spec` turns the captions into per-class prompt lists, each
prompt with its origin (the image's file and sha256) for the manifest.

Which images may be captioned is the caller's decision: a study passes only the real images
its regime may use (the leakage guard of guided generation), never test or validation images.
(``transformers`` 5 removed the ``image-to-text`` pipeline; the model and processor are called
directly, which works for BLIP in transformers 4 and 5 alike.)

References:
    Lei, Chen, Zhang, Wang, Chen, Xu. "Image Captions are Natural Prompts for Text-to-Image
    Models." arXiv:2307.08526, 2023.
    Li, Li, Xiong, Hoi. "BLIP: Bootstrapping Language-Image Pre-training for Unified
    Vision-Language Understanding and Generation." ICML 2022.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from synthaug.data import ImageDataset
from synthaug.data.digest import pixel_digests
from synthaug.errors import ConfigError
from synthaug.fileio import append_jsonl, read_jsonl
from synthaug.generate.prompts import PromptSpec, described
from synthaug.progress import ProgressCallback, report

CAPTION_TEMPLATE = "a photo of a {name}, {caption}"
"""How a caption joins the class name (Lei et al. 2023); ``{name}`` is the label with its description."""

MAX_NEW_TOKENS = 30
# A random or badly matched model may stop at once; a caption has a few words at least.
MIN_NEW_TOKENS = 3


@dataclass(frozen=True)
class Captions:
    """A caption for every image of a dataset, in dataset order.

    Attributes:
        captions: One caption per image.
        sha256: The content hash of each image (what the cache is keyed by).
        model: The captioning model folder or hub id.
        captioned: Images captioned by this call (the others came from the cache).
    """

    captions: tuple[str, ...]
    sha256: tuple[str, ...]
    model: str
    captioned: int

    def to_dict(self) -> dict[str, Any]:
        return {"captions": list(self.captions), "sha256": list(self.sha256), "model": self.model,
                "captioned": self.captioned}  # fmt: skip


def caption_images(
    dataset: ImageDataset,
    model: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 16,
    device: str | None = None,
    local_files_only: bool = True,
    progress: ProgressCallback | None = None,
) -> Captions:
    """Caption every image of ``dataset``, reusing cached captions.

    Args:
        dataset: The real images to caption (only those the caller may use).
        model: Folder of a captioning model and its processor (``save_pretrained``), or a hub
            id with ``local_files_only=False``.
        cache_dir: Folder of the caption cache; default ``synthaug``'s cache folder.
        batch_size: Images per forward pass.
        device: Torch device; default: CUDA when present.
        local_files_only: Never download (the default).
        progress: Called per batch (stage ``caption``, in images).

    Raises:
        ConfigError: ``model`` holds no captioning model, or ``batch_size`` < 1.
    """
    if batch_size < 1:
        raise ConfigError(f"caption batch_size must be at least 1, got {batch_size}")
    model_name = str(model)
    if local_files_only and not Path(model_name).is_dir():
        raise ConfigError(f"captioning model {model_name}: no such folder; give a folder written by save_pretrained "
                          "(e.g. Salesforce/blip-image-captioning-base downloaded once)")  # fmt: skip
    if cache_dir is None:
        from synthaug.data.cache import cache_dir as default_cache_dir

        cache_dir = default_cache_dir("captions")
    key = hashlib.sha256(f"{Path(model_name).resolve() if Path(model_name).is_dir() else model_name}\x00"
                         f"{MAX_NEW_TOKENS}".encode()).hexdigest()[:16]  # fmt: skip
    cache_file = Path(cache_dir) / f"captions-{key}.jsonl"
    cached = {row["sha256"]: row["caption"] for row in read_jsonl(cache_file)[0]}
    digests = pixel_digests(dataset)
    first_of: dict[str, int] = {}  # each uncached content once, at its first image
    for index, digest in enumerate(digests):
        if digest not in cached:
            first_of.setdefault(digest, index)
    unique_missing = list(first_of.values())
    report(progress, "caption", 0, len(unique_missing), unit="images")
    if unique_missing:
        captioner = _Captioner(model_name, device, local_files_only)
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        for start in range(0, len(unique_missing), batch_size):
            batch = unique_missing[start : start + batch_size]
            for index, caption in zip(batch, captioner([dataset[i][0] for i in batch]), strict=True):
                cached[digests[index]] = caption
                append_jsonl(cache_file, {"sha256": digests[index], "caption": caption, "model": model_name})
            report(progress, "caption", min(start + batch_size, len(unique_missing)), len(unique_missing),
                   unit="images")  # fmt: skip
    report(progress, "caption", len(unique_missing), len(unique_missing), unit="images", finished=True)
    return Captions(tuple(cached[d] for d in digests), tuple(digests), model_name, len(unique_missing))


class _Captioner:
    """A captioning model and its processor, called on a list of PIL images."""

    def __init__(self, model: str, device: str | None, local_files_only: bool) -> None:
        try:
            import transformers
        except ImportError as error:
            raise ConfigError("captions need transformers; install it with pip install 'synthaug[clip]'") from error
        from synthaug.runtime import pick_device

        try:
            self.processor = transformers.AutoProcessor.from_pretrained(model, local_files_only=local_files_only)
            self.model = transformers.AutoModelForImageTextToText.from_pretrained(
                model, local_files_only=local_files_only
            )
        except (OSError, ValueError, KeyError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"captioning model {model}: cannot load it ({first})") from error
        self.device = pick_device(device)
        self.model.to(self.device).eval()

    def __call__(self, images: list[Any]) -> list[str]:
        import torch

        inputs = self.processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        with torch.no_grad():
            tokens = self.model.generate(pixel_values=inputs["pixel_values"].to(self.device), do_sample=False,
                                         max_new_tokens=MAX_NEW_TOKENS, min_new_tokens=MIN_NEW_TOKENS)  # fmt: skip
        return [" ".join(text.split()) for text in self.processor.batch_decode(tokens, skip_special_tokens=True)]


def caption_prompt_spec(
    dataset: ImageDataset,
    captions: Captions,
    *,
    base: PromptSpec | None = None,
    template: str = CAPTION_TEMPLATE,
) -> PromptSpec:
    """``base`` with one prompt per distinct caption of each class, each with its origin.

    Args:
        dataset: The images that were captioned (same order as ``captions``).
        captions: Their captions.
        base: The spec to extend (its templates stay for classes without images, its
            ``class_descriptions`` fill ``{name}``).
        template: How a caption joins the class name, with ``{name}`` and ``{caption}``.

    Raises:
        ConfigError: ``captions`` do not belong to ``dataset``, or the template lacks a placeholder.
    """
    if len(captions.captions) != len(dataset):
        raise ConfigError(f"{len(captions.captions)} captions for {len(dataset)} images; caption this dataset")
    if "{name}" not in template or "{caption}" not in template:
        raise ConfigError(f"caption template {template!r} needs both {{name}} and {{caption}}")
    base = base or PromptSpec()
    prompts: dict[str, dict[str, dict[str, Any]]] = {}
    files = dataset.files
    for position, (target, caption) in enumerate(zip(dataset.targets, captions.captions, strict=True)):
        label = dataset.classes[int(target)]
        name = described(label, base.class_descriptions.get(label))
        prompt = template.format(name=name, caption=caption).strip().rstrip(",").strip()
        file = files[position]
        prompts.setdefault(label, {}).setdefault(prompt, {
            "kind": "caption", "model": captions.model, "image_sha256": captions.sha256[position],
            "image": str(file) if file is not None else f"{dataset.name}[{position}]",
        })  # fmt: skip
    return replace(
        base,
        class_prompts={**base.class_prompts, **{label: tuple(p) for label, p in prompts.items()}},
        origins={**base.origins, **{label: tuple(p.values()) for label, p in prompts.items()}},
    )
