"""Per-image scores that say how likely an image's label is wrong, and how uncertain it is.

Four kinds of evidence, every prediction made by a model that did not train on the image:

* **out-of-sample predictions** by K-fold cross-validation: a model of ``config.method``
  is trained on K - 1 folds of the audited data and predicts the held-out fold, so every
  image is judged by a model that never saw it (in-sample predictions would have memorised
  the wrong labels);
* **confident learning** on those predictions (Northcutt et al. 2021, via ``cleanlab``): a
  per-image label-quality score (self-confidence, the predicted probability of the given
  label), a boolean label-issue flag, and the per-class noise rates of the calibrated
  confident joint;
* **agreement with a reference model** trained on real data (optional): the probability it
  gives the image's label;
* **uncertainty** of the cross-validated predictive samples ``(S, N, C)`` (``S > 1`` for
  ensembles, MC dropout, BNNs): the mutual information (epistemic), the expected entropy
  (aleatoric), and the ensemble's disagreement (variation ratio).

The combined ``score`` is the mean over ``config.score_components`` of the components'
normalised ranks (rank / N, ties averaged): rank averaging puts scores of different scales
on one footing without assuming anything about their distributions, and a higher combined
score means a label more likely wrong.

References:
    Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in Dataset
    Labels", JAIR 70, 2021.
    Kuan & Mueller, "Model-agnostic label quality scoring to detect real-world label errors",
    ICML DataPerf workshop, 2022 (self-confidence as the label-quality score).
    Depeweg et al., "Decomposition of Uncertainty in Bayesian Deep Learning", ICML 2018.
    Freeman, "Elementary Applied Statistics", Wiley, 1965 (variation ratio).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from synthaug.audit.duplicates import DEFAULT_MIN_SIMILARITY
from synthaug.data import ImageDataset
from synthaug.errors import ConfigError, DataError
from synthaug.fileio import rewrite_jsonl
from synthaug.metrics import expected_entropy, load_predictions, mutual_information, save_predictions
from synthaug.progress import ProgressCallback, report

LABEL_SCORES = ("cv_label_error", "reference_label_error")
"""Scores of how likely the given label is wrong (higher = more likely)."""

UNCERTAINTY_SCORES = ("disagreement", "mutual_information", "expected_entropy")
"""Scores of how uncertain the cross-validated models are about the image."""

SCORE_COMPONENTS = LABEL_SCORES + UNCERTAINTY_SCORES
"""Every numeric per-image score that can enter the combined ``score``."""

DEFAULT_METHOD_OPTIONS = {"ensemble": {"num_members": 3}}
"""Hyper-parameters of the fold method when ``AuditConfig.method_options`` is ``None``: three
members are the smallest ensemble whose disagreement takes more than two values."""

Log = Callable[[str], None]


@dataclass(frozen=True)
class AuditConfig:
    """Settings of an audit; saved in ``audit.json`` beside its results."""

    folds: int = 5  # K of the K-fold cross-validation that gives out-of-sample predictions
    method: str = "ensemble"  # method trained on each fold; S > 1 samples give disagreement and MI
    method_options: Mapping[str, Any] | None = None  # its hyper-parameters; None: DEFAULT_METHOD_OPTIONS
    backbone: str = "cnn"  # backbone of the fold models and of the reference model
    # Training epochs of every model the audit trains; None: the methods' default (enough
    # epochs for `min_steps` optimiser steps, so small synthetic sets are learnt too).
    epochs: int | None = None
    reference_method: str = "deterministic"  # method trained on the reference (real) data
    seed: int = 0  # seeds the folds and every model
    score_components: tuple[str, ...] = LABEL_SCORES  # scores averaged (by rank) into `score`
    min_similarity: float = DEFAULT_MIN_SIMILARITY  # thumbnail correlation from which two images are near-duplicates
    diversity_sample: int = 500  # images per class the mean pairwise distance is measured on
    report_per_class: int = 8  # worst images per class shown in audit.html

    def __post_init__(self) -> None:
        checks = {
            "folds": self.folds >= 2,
            "epochs": self.epochs is None or self.epochs >= 1,
            "min_similarity": -1.0 <= self.min_similarity <= 1.0,
            "diversity_sample": self.diversity_sample >= 2,
            "report_per_class": self.report_per_class >= 0,
            "score_components": bool(self.score_components)
            and all(name in SCORE_COMPONENTS for name in self.score_components),
        }
        for name, ok in checks.items():
            if not ok:
                hint = f" (choose from {', '.join(SCORE_COMPONENTS)})" if name == "score_components" else ""
                raise ConfigError(f"invalid audit setting {name}={getattr(self, name)!r}{hint}")
        for reserved in ("seed", "epochs", "backbone", "device", "progress"):
            if reserved in (self.method_options or {}):
                raise ConfigError(f"set {reserved} as an audit setting, not in method_options")
        object.__setattr__(self, "score_components", tuple(self.score_components))
        options = DEFAULT_METHOD_OPTIONS.get(self.method, {}) if self.method_options is None else self.method_options
        object.__setattr__(self, "method_options", dict(options))

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values (tuples become lists), as saved in ``audit.json``."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def import_cleanlab() -> ModuleType:
    """Import cleanlab's ``filter``, ``rank`` and ``count`` modules, or say how to install it."""
    try:
        import cleanlab.count
        import cleanlab.filter
        import cleanlab.rank
    except ImportError as error:
        raise ConfigError(
            "the audit needs cleanlab for confident learning; install it with pip install 'synthaug[audit]'"
        ) from error
    return cleanlab


def _fit(key: str, train: ImageDataset, config: AuditConfig, seed: int, device: str | None,
         progress: ProgressCallback | None, options: Mapping[str, Any]) -> Any:
    """Train a ``key`` method with the audit's backbone and epochs on ``train``; returns it fitted."""
    from synthaug.methods import make_method

    method = make_method(key, backbone=config.backbone, epochs=config.epochs, seed=seed, device=device,
                         progress=progress, **options)
    return method.fit(train)


def cross_validated_probabilities(
    data: ImageDataset,
    config: AuditConfig,
    cache_dir: Path | None = None,
    *,
    device: str | None = None,
    progress: ProgressCallback | None = None,
    log: Log | None = None,
) -> np.ndarray:
    """Out-of-sample predictive samples for every image, by stratified K-fold cross-validation.

    Fold ``k``'s model is trained on the other folds with seed ``config.seed + k``. With
    ``cache_dir``, each fold's predictions are saved there (``cv-fold-<k>.npz``) as soon as
    they exist and reused by a later call, so an interrupted audit resumes.

    Returns:
        float32 ``(S, N, C)``, C = ``len(data.classes)``.

    Raises:
        DataError: a class has fewer images than folds.
    """
    counts = np.bincount(data.targets, minlength=len(data.classes))
    present = counts[counts > 0]
    if len(present) < 2:
        raise DataError(f"{data.name}: the audit needs images of at least 2 classes, found {len(present)}")
    if present.min() < config.folds:
        small = [name for name, count in zip(data.classes, counts) if 0 < count < config.folds]
        raise DataError(
            f"{data.name}: classes {small} have fewer images than the {config.folds} cross-validation "
            f"folds; add images or lower --folds to at most {present.min()}"
        )
    # scipy and scikit-learn are imported where used: together they cost seconds of CLI start-up.
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
    samples: np.ndarray | None = None
    report(progress, "audit folds", 0, config.folds, unit="folds")
    for fold, (train_index, held_out) in enumerate(splitter.split(np.zeros(len(data)), data.targets)):
        cached = None if cache_dir is None else cache_dir / f"cv-fold-{fold}.npz"
        if cached is not None and cached.is_file():
            probs, labels, _ = load_predictions(cached)
            if not np.array_equal(labels, data.targets[held_out]):
                raise DataError(f"{cached}: cached predictions belong to other data; delete the file")
        else:
            if log:
                log(f"cross-validation fold {fold + 1}/{config.folds}: training {config.method} "
                    f"on {len(train_index)} images")
            model = _fit(config.method, data.subset(train_index), config, config.seed + fold, device, progress,
                         config.method_options)
            probs = model.predict_proba(data.subset(held_out))
            if cached is not None:
                save_predictions(cached, probs, data.targets[held_out], data.classes)
        if samples is None:
            samples = np.zeros((probs.shape[0], len(data), len(data.classes)), dtype=np.float32)
        samples[:, held_out] = probs
        report(progress, "audit folds", fold + 1, config.folds, unit="folds", item=f"fold {fold + 1}")
    report(progress, "audit folds", config.folds, config.folds, unit="folds", finished=True)
    return samples


def reference_model(
    reference: ImageDataset,
    config: AuditConfig,
    cache_dir: Path | None = None,
    *,
    device: str | None = None,
    progress: ProgressCallback | None = None,
    log: Log | None = None,
) -> Any:
    """Train (or, from ``cache_dir/reference-model``, reload) the reference model.

    Returns:
        The fitted :class:`~synthaug.methods.UncertaintyMethod` of ``config.reference_method``.
    """
    from synthaug.methods import load_method

    saved = None if cache_dir is None else cache_dir / "reference-model"
    if saved is not None and (saved / "config.json").is_file():
        return load_method(saved, device=device, progress=progress)
    if log:
        log(f"training the reference model ({config.reference_method}) on {len(reference)} images")
    model = _fit(config.reference_method, reference, config, config.seed, device, progress, {})
    if saved is not None:
        model.save(saved)
    return model


def check_reference_classes(data: ImageDataset, reference_classes: list[str], reference_name: str) -> None:
    """Raise a :class:`DataError` unless every class of ``data`` is a reference class (by name)."""
    missing = [name for name in data.classes if name not in reference_classes]
    if missing:
        raise DataError(
            f"{data.name}: classes {missing} are not classes of the reference {reference_name} "
            f"({reference_classes}); the reference must hold every class of {data.name}, with the same names"
        )


def reference_label_probabilities(model: Any, data: ImageDataset) -> tuple[np.ndarray, list[str]]:
    """The reference model's mean predictive probability of each image's label, and its predicted class.

    Returns:
        ``(probability_of_label (N,), predicted class names)``.

    Raises:
        DataError: a class of ``data`` is unknown to the reference model.
    """
    check_reference_classes(data, model.classes_, "the reference model")
    mean_probs = model.predict_proba(data).astype(np.float64).mean(axis=0)
    columns = np.array([model.classes_.index(name) for name in data.classes])
    probability_of_label = mean_probs[np.arange(len(data)), columns[data.targets]]
    predicted = [model.classes_[k] for k in mean_probs.argmax(axis=1)]
    return probability_of_label, predicted


@dataclass(frozen=True)
class ConfidentLearning:
    """Confident-learning results on out-of-sample probabilities.

    Attributes:
        label_quality: float ``(N,)`` in [0, 1], the self-confidence ``p(given label)``.
        label_issue: bool ``(N,)``, cleanlab's ``find_label_issues`` (prune by noise rate).
        noise_rate: float ``(C,)``: per given class, the estimated share of wrong labels
            ``1 - Q[i, i] / sum_j Q[i, j]`` of the calibrated confident joint ``Q``; NaN for
            classes without images.
    """

    label_quality: np.ndarray
    label_issue: np.ndarray
    noise_rate: np.ndarray


def confident_learning(labels: np.ndarray, mean_probs: np.ndarray) -> ConfidentLearning:
    """Run confident learning (Northcutt et al. 2021) with cleanlab.

    Classes without images are left out (cleanlab needs every class of ``pred_probs`` among
    the labels) and the probabilities renormalised over the present ones.

    Args:
        labels: int ``(N,)`` given labels.
        mean_probs: float ``(N, C)`` out-of-sample predicted probabilities.
    """
    cleanlab = import_cleanlab()
    num_classes = mean_probs.shape[1]
    present = np.flatnonzero(np.bincount(labels, minlength=num_classes))
    compact = np.full(num_classes, -1)
    compact[present] = np.arange(len(present))
    probs = np.clip(mean_probs[:, present].astype(np.float64), 1e-12, None)
    probs /= probs.sum(axis=1, keepdims=True)
    compact_labels = compact[labels]
    quality = cleanlab.rank.get_label_quality_scores(compact_labels, probs, method="self_confidence")
    issues = cleanlab.filter.find_label_issues(compact_labels, probs, filter_by="prune_by_noise_rate", n_jobs=1)
    joint = cleanlab.count.estimate_joint(compact_labels, probs)
    noise_rate = np.full(num_classes, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        noise_rate[present] = 1.0 - np.diag(joint) / joint.sum(axis=1)
    return ConfidentLearning(np.asarray(quality, dtype=np.float64), np.asarray(issues, dtype=bool), noise_rate)


def disagreement(samples: np.ndarray) -> np.ndarray:
    """Variation ratio of probability samples ``(S, N, C)``: ``1 - (votes of the modal class) / S``.

    0 when every sample (ensemble member, dropout mask) predicts the same class; always 0
    for ``S = 1``. Returns float64 ``(N,)``.
    """
    votes = samples.argmax(axis=2)  # (S, N)
    counts = np.stack([(votes == c).sum(axis=0) for c in range(samples.shape[2])], axis=1)
    return 1.0 - counts.max(axis=1) / samples.shape[0]


def uncertainty_scores(samples: np.ndarray) -> dict[str, np.ndarray]:
    """Disagreement, mutual information and expected entropy (nats) per image, each ``(N,)``."""
    return {
        "disagreement": disagreement(samples),
        "mutual_information": mutual_information(samples),
        "expected_entropy": expected_entropy(samples),
    }


def rank_normalise(values: np.ndarray) -> np.ndarray:
    """Ranks divided by N, in (0, 1], ties averaged; the largest value gets 1."""
    import scipy.stats

    return scipy.stats.rankdata(values, method="average") / len(values)


def combined_score(components: Mapping[str, np.ndarray]) -> np.ndarray:
    """Mean of the rank-normalised components, float64 ``(N,)`` in (0, 1]; higher = more likely wrong."""
    if not components:
        raise ConfigError("the combined score needs at least one component score")
    return np.mean([rank_normalise(np.asarray(values, dtype=np.float64)) for values in components.values()], axis=0)


def json_value(value: Any) -> Any:
    """A numpy scalar as a plain JSON value; NaN and infinities become ``None``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace ``path`` with one JSON object per row (NaN as ``null``), in one step."""
    rewrite_jsonl(path, ({key: json_value(value) for key, value in row.items()} for row in rows))
