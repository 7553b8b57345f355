"""The feature spaces generated images are compared with real ones in.

A spec names the space:

* ``reference`` (default): the penultimate layer of a classifier trained on the real images,
  the audit's reference model (:func:`synthaug.audit.scores.reference_model`): distance means
  "looks different to a classifier of these classes", which is what a training set needs;
* ``model:DIR``: the same layer of a model saved by ``synthaug train`` (trained on real data);
* ``clip:DIR``: CLIP image embeddings (:class:`synthaug.audit.clip.ClipScorer`), a space that
  knows nothing of these classes but much about images;
* ``thumbnails``: the mean-centred 32x32 grayscale thumbnails of the near-copy check (pixels;
  cheap, and the space of the memorisation counts).

Numbers from different spaces are not comparable; every result names its space.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthaug.audit.duplicates import thumbnails
from synthaug.audit.scores import AuditConfig, check_reference_classes, reference_model
from synthaug.audit.summary import feature_network, feature_vectors
from synthaug.data import ImageDataset
from synthaug.errors import ConfigError
from synthaug.progress import ProgressCallback

__all__ = ["FEATURE_KINDS", "FeatureSpace"]

FEATURE_KINDS = ("reference", "model", "clip", "thumbnails")
"""Kinds of feature space; ``model`` and ``clip`` take a folder (``clip:DIR``)."""


@dataclass(frozen=True)
class FeatureSpace:
    """A feature space by kind, with the folder of its model where it has one.

    Attributes:
        kind: One of :data:`FEATURE_KINDS`.
        location: The model folder (``model`` and ``clip``), else ``None``.
    """

    kind: str
    location: str | None = None

    @classmethod
    def parse(cls, spec: str) -> FeatureSpace:
        """``"clip:models/clip"`` -> ``FeatureSpace("clip", "models/clip")``.

        Raises:
            ConfigError: an unknown kind, or a folder missing or given where none belongs.
        """
        kind, _, location = spec.partition(":")
        if kind not in FEATURE_KINDS:
            raise ConfigError(f"--features {spec!r}: unknown feature space; choose reference, thumbnails, "
                              "model:DIR or clip:DIR")
        if kind in ("model", "clip") and not location:
            raise ConfigError(f"--features {spec!r}: give the model folder, as {kind}:DIR")
        if kind in ("reference", "thumbnails") and location:
            raise ConfigError(f"--features {spec!r}: {kind} takes no folder")
        return cls(kind, location or None)

    def __str__(self) -> str:
        return self.kind if self.location is None else f"{self.kind}:{self.location}"

    def extractor(
        self,
        reference: ImageDataset,
        cache_dir: Path,
        *,
        config: AuditConfig | None = None,
        device: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[Callable[[ImageDataset], np.ndarray], str]:
        """A function from a dataset to its float ``(N, D)`` features, and a description of the space.

        Args:
            reference: The real images (the ``reference`` space trains its model on them).
            cache_dir: Where the ``reference`` model is saved and found again (keyed by the
                real data and the settings, so a rerun reuses it).
            config: Epochs, backbone, method and seed of the reference model (the audit's).
            device: Torch device of the models.
            progress: Progress of the CLIP embedding.
        """
        if self.kind == "thumbnails":
            return lambda dataset: thumbnails(dataset).numpy(), "32x32 centred grayscale thumbnails (pixels)"
        if self.kind == "clip":
            from synthaug.audit.clip import ClipScorer

            scorer = ClipScorer(self.location, device=device)
            return (lambda dataset: scorer.image_embeddings(dataset, progress),
                    f"CLIP image embeddings ({self.location})")
        if self.kind == "model":
            from synthaug.methods import load_method

            model = load_method(self.location, device=device)
            description = f"penultimate layer of the model in {self.location}"
        else:
            config = config or AuditConfig()
            key = hashlib.sha256(json.dumps([reference.fingerprint(), config.to_dict()]).encode()).hexdigest()[:16]
            model = reference_model(reference, config, cache_dir / f"reference-{key}", device=device)
            description = (f"penultimate layer of a {config.backbone} {config.reference_method} classifier trained "
                           f"on {reference.name} ({config.epochs or 'default'} epochs, seed {config.seed})")
        if feature_network(model) is None:
            raise ConfigError(f"--features {self}: the model has no plain nn.Sequential network to take the "
                              "penultimate layer of; use clip:DIR or thumbnails")
        classes: Sequence[str] = model.classes_

        def extract(dataset: ImageDataset) -> np.ndarray:
            check_reference_classes(dataset, list(classes), f"feature model {self}")
            return feature_vectors(dataset, model)[0]

        return extract, description
