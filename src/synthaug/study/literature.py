"""Published numbers a study's results are read against, each saying what it measured.

The report's "original study" table pairs each :data:`ORIGINAL_STUDY` row with the group of
this study that reran it (same kind of training data, same kind of model), and the headline
adds a fact for every method an original-study row names. Nothing finds a row by its position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "AUGMENTATION_LITERATURE", "EXCHANGE_RATE", "ORIGINAL_STUDY", "ReferenceResult", "literature_dict",
    "reference_method_keys",
]  # fmt: skip


@dataclass(frozen=True)
class ReferenceResult:
    """One experiment of the study synthaug reproduces, and how to find our rerun of it.

    Attributes:
        experiment: What they did, as they describe it.
        accuracy: Their test accuracy.
        data: The kind of training data (our rerun uses the main setting's regime of that kind).
        method_key: Registry key of the method they used; ``None`` for the study's baseline
            method (their frozen backbone with a trained head).
        ours: Label of our rerun in the report; ``{backbone}`` and ``{method}`` are filled in
            from the main setting.
    """

    experiment: str
    accuracy: float
    data: Literal["real", "synthetic"]
    method_key: str | None
    ours: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data (as quoted in ``analysis.json``)."""
        return {"experiment": self.experiment, "accuracy": self.accuracy}


#: He et al. (2023), "Is synthetic data from generative models ready for image recognition?"
#: (ICLR): about 5 synthetic images are worth 1 real image on CIFAR-100.
EXCHANGE_RATE = {
    "value": 5.0,
    "text": "He et al. (2023), “Is synthetic data from generative models ready for image "
    "recognition?” (ICLR), report that about 5 synthetic images are worth 1 real image on CIFAR-100.",
}

#: The original study's three experiments.
ORIGINAL_STUDY = (
    ReferenceResult(
        "DALL-E images → frozen ResNet152-V2 + head",
        0.9106,
        "synthetic",
        None,
        "synthetic images → {backbone} ({method})",
    ),
    ReferenceResult("real images → same model", 0.9492, "real", None, "real images → same model"),
    ReferenceResult("DALL-E images → BNN", 0.1956, "synthetic", "bnn", "synthetic images → BNN"),
)


#: What the field measured when generated images met classical augmentation, shown beside a
#: study's own "generated vs classical augmentation" numbers (each row: who, on what, what).
AUGMENTATION_LITERATURE = (
    {
        "study": "SaSPA (Michaeli & Fried, NeurIPS 2024)",
        "setting": "ResNet-50, five fine-grained datasets, against the best classical augmentation",
        "finding": "Real Guidance and ALIA: −1.8 to +0.5 points; SaSPA: +0.5 to +3.6 points; no augmentation → "
                   "RandAugment alone: up to +5.5 points (CompCars)",
    },
    {
        "study": "DA-Fusion (Trabucco et al., ICLR 2024)",
        "setting": "few-shot classification, generated variants against RandAugment",
        "finding": "gains over RandAugment largest below 16 images per class, marginal above",
    },
    {
        "study": "DiffDA-Eval (IJCV 2026)",
        "setting": "every diffusion-augmentation method trained on top of crop + flip, MixUp/CutMix as options",
        "finding": "classical augmentation is the baseline every generated set must beat",
    },
    {
        "study": "Wen et al. (ICLR 2021), “Combining ensembles and data augmentation can harm your calibration”",
        "setting": "MixUp with ensembles",
        "finding": "MixUp changes calibration (under-confidence): read Δ ECE beside Δ accuracy",
    },
)


def reference_method_keys() -> set[str]:
    """Keys of the methods an original-study experiment used (besides the baseline)."""
    return {row.method_key for row in ORIGINAL_STUDY if row.method_key is not None}


def literature_dict() -> dict[str, Any]:
    """The references as quoted in ``analysis.json``."""
    return {
        "exchange_rate": dict(EXCHANGE_RATE),
        "original_study": [row.to_dict() for row in ORIGINAL_STUDY],
        "augmentation": [dict(row) for row in AUGMENTATION_LITERATURE],
    }
