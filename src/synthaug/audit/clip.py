"""CLIP scores of labelled images: image-prompt agreement and zero-shot class agreement.

The standard filter for generated training data (He et al. 2023; SaSPA; datadreamer) keeps an
image when CLIP finds it close to its prompt, or when CLIP's zero-shot classifier picks the
image's own class among all the classes. :class:`ClipScorer` computes both for every image
of an :class:`~synthaug.data.ImageDataset`, batched, on the GPU when there is one:

* ``prompt_score``: CLIPScore, ``100 * max(cos(image, prompt), 0)`` (the scale of
  torchmetrics' ``CLIPScore``; Hessel et al. 2021 use 2.5 instead of 100). The prompt is the
  one the image was generated from (``prompt`` in its metadata row), else
  ``"a photo of a {label}"``;
* ``class_probability``: the zero-shot softmax over ``"a photo of a {class}"`` for every
  class, at CLIP's learned temperature; ``agreement`` says the top class is the image's label.

The model is a local folder holding a ``CLIPModel`` and a ``CLIPProcessor`` (what their
``save_pretrained`` writes; ``openai/clip-vit-base-patch32`` downloaded once, for example).
Loading is offline (``local_files_only``) unless asked otherwise, so nothing is fetched
behind the user's back; a hub id works with ``local_files_only=False``.

This lives in :mod:`synthaug.audit` because ``synthaug filter`` uses it, and
:mod:`synthaug.quality` (which sits above the audit) reuses its image embeddings.

References:
    Radford et al., "Learning Transferable Visual Models From Natural Language Supervision",
    ICML 2021 (CLIP, zero-shot classification).
    Hessel, Holtzman, Forbes, Le Bras & Choi, "CLIPScore: A Reference-free Evaluation Metric
    for Image Captioning", EMNLP 2021.
    He et al., "Is Synthetic Data from Generative Models Ready for Image Recognition?",
    ICLR 2023 (CLIP filtering of generated training images).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthaug.data import ImageDataset
from synthaug.errors import ConfigError
from synthaug.progress import ProgressCallback, report
from synthaug.runtime import pick_device

__all__ = ["CLASS_TEMPLATE", "ClipScorer", "ClipScores"]

CLASS_TEMPLATE = "a photo of a {label}"
"""Text each class name is put into for zero-shot classification, and the prompt assumed for
an image without one (the default prompt of ``synthaug generate``)."""


@dataclass(frozen=True)
class ClipScores:
    """CLIP's view of every image of a dataset, in dataset order.

    Attributes:
        prompt_score: float64 ``(N,)`` CLIPScore against each image's prompt, in [0, 100].
        class_probability: float64 ``(N, C)`` zero-shot probabilities over the dataset's classes.
        agreement: bool ``(N,)``: the zero-shot top class is the image's label.
        prompts: The prompt each image was scored against.
        model: The CLIP model folder or hub id.
    """

    prompt_score: np.ndarray
    class_probability: np.ndarray
    agreement: np.ndarray
    prompts: list[str]
    model: str

    @property
    def predicted(self) -> np.ndarray:
        """int64 ``(N,)`` zero-shot class of each image."""
        return self.class_probability.argmax(axis=1)


class ClipScorer:
    """A CLIP model that embeds and scores images of a dataset.

    >>> scorer = ClipScorer("models/clip-vit-base-patch32")
    >>> scores = scorer.score(dataset)          # prompt_score, class_probability, agreement
    >>> embeddings = scorer.image_embeddings(dataset)   # (N, D), unit length

    Args:
        model: Folder written by ``CLIPModel.save_pretrained`` and
            ``CLIPProcessor.save_pretrained`` (or, with ``local_files_only=False``, a hub id).
        device: Torch device; default: CUDA when present.
        batch_size: Images per forward pass.
        local_files_only: Never download (the default).

    Raises:
        ConfigError: transformers is missing, or ``model`` holds no CLIP model and processor.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        device: str | None = None,
        batch_size: int = 64,
        local_files_only: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        try:
            from transformers import CLIPModel, CLIPProcessor
        except ImportError as error:
            raise ConfigError("CLIP scoring needs transformers; install it with pip install 'synthaug[clip]'") \
                from error
        self.model_name = str(model)
        if local_files_only and not Path(model).is_dir():
            raise ConfigError(f"CLIP model {self.model_name}: no such folder; give a folder written by "
                              "CLIPModel.save_pretrained and CLIPProcessor.save_pretrained")
        try:
            self.model = CLIPModel.from_pretrained(model, local_files_only=local_files_only)
            self.processor = CLIPProcessor.from_pretrained(model, local_files_only=local_files_only)
        except (OSError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"CLIP model {self.model_name}: cannot load a CLIPModel and CLIPProcessor "
                              f"({first_line})") from error
        self.device = pick_device(device)
        self.model.to(self.device).eval()
        self.batch_size = batch_size

    @torch.no_grad()
    def image_embeddings(self, dataset: ImageDataset, progress: ProgressCallback | None = None) -> np.ndarray:
        """Unit-length image embeddings, float32 ``(N, D)`` (D = the projection dimension)."""
        chunks = []
        report(progress, "clip images", 0, len(dataset), unit="images")
        for start in range(0, len(dataset), self.batch_size):
            stop = min(start + self.batch_size, len(dataset))
            images = [dataset[index][0].convert("RGB") for index in range(start, stop)]
            pixels = self.processor(images=images, return_tensors="pt")["pixel_values"].to(self.device)
            # vision_model + visual_projection is what get_image_features computes; called
            # directly because its return type differs between transformers 4 and 5.
            pooled = self.model.vision_model(pixel_values=pixels).pooler_output
            chunks.append(_unit(self.model.visual_projection(pooled)).cpu())
            report(progress, "clip images", stop, len(dataset), unit="images")
        report(progress, "clip images", len(dataset), len(dataset), unit="images", finished=True)
        dimension = self.model.config.projection_dim
        return torch.cat(chunks).numpy() if chunks else np.zeros((0, dimension), dtype=np.float32)

    @torch.no_grad()
    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length text embeddings, float32 ``(T, D)``; texts longer than CLIP's context are cut."""
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.processor.tokenizer(list(texts[start:start + self.batch_size]), padding=True,
                                              truncation=True, return_tensors="pt").to(self.device)
            pooled = self.model.text_model(input_ids=tokens["input_ids"],
                                           attention_mask=tokens["attention_mask"]).pooler_output
            chunks.append(_unit(self.model.text_projection(pooled)).cpu())
        return torch.cat(chunks).numpy()

    def score(self, dataset: ImageDataset, progress: ProgressCallback | None = None) -> ClipScores:
        """Prompt agreement and zero-shot class agreement of every image (see the module docstring)."""
        images = self.image_embeddings(dataset, progress).astype(np.float64)
        prompts = [_prompt_of(record, dataset.classes[label])
                   for record, label in zip(dataset.records, dataset.targets)]
        unique = list(dict.fromkeys(prompts))
        prompt_vectors = self.text_embeddings(unique).astype(np.float64)
        position = {prompt: index for index, prompt in enumerate(unique)}
        cosine = np.einsum("nd,nd->n", images, prompt_vectors[[position[prompt] for prompt in prompts]])
        class_vectors = self.text_embeddings([CLASS_TEMPLATE.format(label=name) for name in dataset.classes])
        logits = float(self.model.logit_scale.detach().exp()) * images @ class_vectors.astype(np.float64).T
        logits -= logits.max(axis=1, keepdims=True)
        probability = np.exp(logits)
        probability /= probability.sum(axis=1, keepdims=True)
        return ClipScores(
            prompt_score=100.0 * np.clip(cosine, 0.0, None),
            class_probability=probability,
            agreement=probability.argmax(axis=1) == dataset.targets,
            prompts=prompts,
            model=self.model_name,
        )


def _unit(vectors: torch.Tensor) -> torch.Tensor:
    return vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _prompt_of(record: dict[str, Any], label: str) -> str:
    prompt = record.get("prompt")
    return prompt if isinstance(prompt, str) and prompt.strip() else CLASS_TEMPLATE.format(label=label)
