"""``inspect_generated``: what a generator made, measured against real images, per class.

For each class of the generated set and for the whole set, in one feature space
(:mod:`synthaug.quality.features`):

* precision, recall, density and coverage (:func:`synthaug.quality.prdc`): fidelity and
  diversity apart; the Fréchet distance (:func:`synthaug.quality.frechet_distance`) and KID
  (:mod:`synthaug.quality.kid`), named with their space. Each is measured on equal-size
  samples over seeded draws and shown beside the value a held-out real sample of the same size
  gets against the same reference (:func:`synthaug.quality.baseline.compare_with_real`): a
  coverage of 0.28 means little until one knows that real images reach 0.37, or 0.97;
* memorisation against the real images (:func:`synthaug.quality.memorisation`, pixel space);
* the generated images nearest to and farthest from the real images of their class.

The output folder holds ``summary.json`` (the :class:`InspectSummary` record),
``inspect.html`` (the table, the findings and the thumbnails, self-contained, in the report's
look: :mod:`synthaug.pages`) and ``thumbnails.png`` (one row per class: the nearest images on
the left, the farthest on the right), plus the reference model when the space needs one (so a
rerun reuses it). Works on any pair of labelled image folders or built-in datasets whose class
names match.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import synthaug
from synthaug import pages
from synthaug.audit.report import image_data_uri, suspect_grid
from synthaug.audit.run import image_name
from synthaug.audit.scores import AuditConfig, check_reference_classes
from synthaug.data import ImageDataset
from synthaug.errors import ConfigError
from synthaug.fileio import atomic_write_bytes, atomic_write_text, from_json_value, to_json_value
from synthaug.progress import ProgressCallback, report
from synthaug.quality.baseline import (
    LABELS,
    MEASURES,
    Measure,
    compare_with_real,
    describe_gap,
    equal_sample_size,
    format_value,
)
from synthaug.quality.copies import Memorisation, memorisation
from synthaug.quality.features import FeatureSpace

__all__ = ["GroupQuality", "InspectSummary", "NearImage", "inspect_generated", "read_summary"]

SUMMARY_FILE = "summary.json"
REPORT_FILE = "inspect.html"
GRID_FILE = "thumbnails.png"
OVERALL = "overall"
"""Name of the group that pools every class."""


@dataclass(frozen=True)
class NearImage:
    """A generated image with its feature distance to the nearest real image of its class."""

    file_name: str
    label: str
    distance: float
    index: int


@dataclass(frozen=True)
class GroupQuality:
    """The measures of one class (or of all of them, ``name == "overall"``).

    Attributes:
        name: Class name, or ``"overall"``.
        generated: Generated images in the group.
        real: Real images in the group.
        sample_size: Size of the equal generated, baseline and reference samples the measures
            come from (:func:`~synthaug.quality.baseline.equal_sample_size`).
        measures: Precision, recall, density, coverage, ``frechet_distance`` and ``kid``, each
            beside its real-vs-real baseline (:class:`~synthaug.quality.baseline.Measure`); those
            the sample size does not allow are missing.
        findings: A sentence for each measure whose gap to the baseline resampling does not
            explain (:func:`~synthaug.quality.baseline.describe_gap`).
        memorisation: Copy counts against the real images (pixel space).
        nearest: Generated images nearest to the real ones, nearest first.
        farthest: Generated images farthest from them, farthest first.
    """

    name: str
    generated: int
    real: int
    sample_size: int
    measures: dict[str, Measure]
    findings: list[str]
    memorisation: Memorisation
    nearest: list[NearImage] = field(default_factory=list)
    farthest: list[NearImage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON values."""
        return {
            "name": self.name,
            "generated": self.generated,
            "real": self.real,
            "sample_size": self.sample_size,
            "measures": {name: measure.to_dict() for name, measure in self.measures.items()},
            "findings": list(self.findings),
            "memorisation": self.memorisation.to_dict(),
            "nearest": [asdict(item) for item in self.nearest],
            "farthest": [asdict(item) for item in self.farthest],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupQuality:
        """The record from :meth:`to_dict`'s output."""
        return cls(
            name=data["name"],
            generated=data["generated"],
            real=data["real"],
            sample_size=data["sample_size"],
            measures={name: Measure.from_dict(value) for name, value in data["measures"].items()},
            findings=list(data["findings"]),
            memorisation=Memorisation.from_dict(data["memorisation"]),
            nearest=[NearImage(**item) for item in data["nearest"]],
            farthest=[NearImage(**item) for item in data["farthest"]],
        )


@dataclass(frozen=True)
class InspectSummary:
    """What ``summary.json`` holds: every group's measures and how they were made.

    Attributes:
        title: What pages call the generated set (a study source's name, a folder's name,
            the generator that made a cache folder; see :func:`synthaug.pages.dataset_title`).
        generated_name: Name of the generated dataset (for a folder, its path).
        reference_name: Name of the real dataset.
        feature_space: The feature-space spec (``reference``, ``clip:DIR``, ...).
        feature_description: What the features are, in words.
        nearest_k: The k of precision, recall, density and coverage.
        draws: Seeded draws of the equal-size samples behind every measure.
        seed: Seed of the draws.
        overall: The measures of all classes pooled.
        classes: The measures of each class, in the generated set's class order.
        synthaug_version: Version that wrote it.
        seconds: Wall time of the inspection.
    """

    title: str
    generated_name: str
    reference_name: str
    feature_space: str
    feature_description: str
    nearest_k: int
    draws: int
    seed: int
    overall: GroupQuality
    classes: list[GroupQuality]
    synthaug_version: str = synthaug.__version__
    seconds: float = 0.0

    _SCALARS = ("title", "generated_name", "reference_name", "feature_space", "feature_description", "nearest_k",
                "draws", "seed", "synthaug_version", "seconds")

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON values (what ``summary.json`` holds)."""
        return to_json_value({
            **{key: getattr(self, key) for key in self._SCALARS},
            "overall": self.overall.to_dict(),
            "classes": [group.to_dict() for group in self.classes],
        })

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InspectSummary:
        """The record from :meth:`to_dict`'s output."""
        data = from_json_value(data)
        return cls(
            **{key: data[key] for key in cls._SCALARS},
            overall=GroupQuality.from_dict(data["overall"]),
            classes=[GroupQuality.from_dict(group) for group in data["classes"]],
        )

    def group(self, name: str) -> GroupQuality:
        """The group called ``name`` (a class name or ``"overall"``)."""
        return self.overall if name == OVERALL else next(group for group in self.classes if group.name == name)


def read_summary(path: str | Path) -> InspectSummary:
    """The :class:`InspectSummary` in ``path`` (``summary.json`` or the folder holding it).

    Raises:
        ConfigError: no such file, or not a summary.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SUMMARY_FILE
    try:
        return InspectSummary.from_dict(json.loads(path.read_text()))
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: no inspect summary; run `synthaug inspect GENERATED --reference REAL --out DIR`") \
            from error
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ConfigError(f"{path}: not an inspect summary ({error}); run the inspection again") from error


def _near_images(dataset: ImageDataset, indices: np.ndarray, distances: np.ndarray, count: int,
                 farthest: bool) -> list[NearImage]:
    order = np.argsort(-distances if farthest else distances, kind="stable")[:count]
    return [NearImage(image_name(dataset, int(indices[i])), dataset.classes[dataset.targets[indices[i]]],
                      float(distances[i]), int(indices[i])) for i in order]


def _with_images(group: GroupQuality, generated: ImageDataset, rows: np.ndarray, distances: np.ndarray,
                 count: int) -> GroupQuality:
    """``group`` with its ``count`` nearest and farthest generated images (``rows`` of ``generated``
    at these ``distances`` from the real images)."""
    return replace(group, nearest=_near_images(generated, rows, distances, count, False),
                   farthest=_near_images(generated, rows, distances, count, True))


def _nearest_real_distance(fake: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Euclidean distance of each fake row to its nearest real row, float64."""
    fake_t = torch.from_numpy(np.asarray(fake, dtype=np.float64))
    real_t = torch.from_numpy(np.asarray(real, dtype=np.float64))
    return torch.cat([torch.cdist(chunk, real_t).min(dim=1).values for chunk in fake_t.split(1024)]).numpy()


def _group(name: str, fake: np.ndarray, real: np.ndarray, nearest_k: int, draws: int, seed: int,
           copies: Memorisation) -> GroupQuality:
    measures = compare_with_real(real, fake, nearest_k=nearest_k, draws=draws, seed=seed)
    return GroupQuality(
        name=name,
        generated=len(fake),
        real=len(real),
        sample_size=equal_sample_size(len(fake), len(real)),
        measures=measures,
        findings=[sentence for key, measure in measures.items() if (sentence := describe_gap(key, measure))],
        memorisation=copies,
    )


def inspect_generated(
    generated: ImageDataset,
    reference: ImageDataset,
    out_dir: str | Path,
    *,
    features: str | FeatureSpace = "reference",
    nearest_k: int = 5,
    draws: int = 10,
    title: str | None = None,
    thumbnails_per_class: int = 8,
    config: AuditConfig | None = None,
    model_dir: str | Path | None = None,
    device: str | None = None,
    progress: ProgressCallback | None = None,
) -> InspectSummary:
    """Measure ``generated`` against the real ``reference`` images; write ``out_dir``.

    Args:
        generated: The generated images.
        reference: Real images of the same classes (by name; it may hold more classes).
            Memorisation counts copies of these, so give the generator's or the classifier's
            real training images.
        out_dir: Folder for ``summary.json``, ``inspect.html``, ``thumbnails.png``; created
            if missing, its files replaced.
        features: The feature space (see :mod:`synthaug.quality.features`).
        nearest_k: k of the k-NN manifolds (Naeem et al. use 5).
        draws: Seeded draws of the equal-size generated, baseline and reference samples
            (:func:`~synthaug.quality.baseline.compare_with_real`); 10 keep the percentile
            ranges stable to about 0.01 on coverage at 80 images a class and cost seconds.
        title: What pages call the generated set; default: from its name
            (:func:`synthaug.pages.dataset_title`: a folder's name and the generator of a
            cache folder, never its 64-digit path).
        thumbnails_per_class: Nearest and farthest images shown per class.
        config: Settings of the reference model (epochs, backbone, seed), as in the audit;
            its seed also seeds the draws.
        model_dir: Where the reference model is saved and found again, keyed by the real
            data and ``config`` (default ``out_dir``; a study shares one across its sources).
        device: Torch device of the feature model.
        progress: Called as the stages (features, classes) advance.

    Returns:
        The :class:`InspectSummary` written to ``summary.json``.

    Raises:
        DataError: a generated class is not a reference class.
        ConfigError: a bad feature-space spec or settings.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    space = FeatureSpace.parse(features) if isinstance(features, str) else features
    if draws < 1:
        raise ConfigError(f"draws must be >= 1, got {draws}")
    if thumbnails_per_class < 0:
        raise ConfigError(f"thumbnails_per_class must be >= 0, got {thumbnails_per_class}")
    check_reference_classes(generated, reference.classes, reference.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = "inspect"
    steps = 3 + len(generated.classes)
    report(progress, stage, 0, steps, item="feature model", unit="steps")
    extract, description = space.extractor(reference, Path(model_dir or out_dir), config=config, device=device,
                                           progress=progress)
    report(progress, stage, 1, steps, item="features", unit="steps")
    fake_features = extract(generated)
    real_features = extract(reference)
    report(progress, stage, 2, steps, item="memorisation", unit="steps")
    seed = (config or AuditConfig()).seed
    copies = memorisation(generated, reference, seed=seed)

    real_labels = np.array([generated.classes.index(name) if name in generated.classes else -1
                            for name in reference.classes])[reference.targets]
    nearest_distance = np.full(len(generated), np.nan)
    groups = []
    for label, name in enumerate(generated.classes):
        fake_rows, real_rows = np.flatnonzero(generated.targets == label), np.flatnonzero(real_labels == label)
        group = _group(name, fake_features[fake_rows], real_features[real_rows], nearest_k, draws, seed + 1 + label,
                       copies[name])
        if len(fake_rows) and len(real_rows):
            distances = _nearest_real_distance(fake_features[fake_rows], real_features[real_rows])
            nearest_distance[fake_rows] = distances
            group = _with_images(group, generated, fake_rows, distances, thumbnails_per_class)
        groups.append(group)
        report(progress, stage, 3 + label, steps, item=name, unit="steps")
    pooled = np.flatnonzero(real_labels >= 0)
    measured = np.flatnonzero(np.isfinite(nearest_distance))
    overall = _group(OVERALL, fake_features, real_features[pooled], nearest_k, draws, seed,
                     Memorisation.total(list(copies.values())))
    overall = _with_images(overall, generated, measured, nearest_distance[measured], thumbnails_per_class)
    summary = InspectSummary(
        title=title or pages.dataset_title(generated.name),
        generated_name=generated.name,
        reference_name=reference.name,
        feature_space=str(space),
        feature_description=description,
        nearest_k=nearest_k,
        draws=draws,
        seed=seed,
        overall=overall,
        classes=groups,
        seconds=time.perf_counter() - started,
    )
    _write_outputs(out_dir, summary, generated)
    report(progress, stage, steps, steps, unit="steps", finished=True)
    return summary


def _write_outputs(out_dir: Path, summary: InspectSummary, generated: ImageDataset) -> None:
    atomic_write_text(out_dir / SUMMARY_FILE, json.dumps(summary.to_dict(), indent=2) + "\n")
    columns = max([len(group.nearest) + len(group.farthest) for group in summary.classes] + [1])
    indices = []
    for group in summary.classes:
        row = [item.index for item in group.nearest] + [item.index for item in group.farthest]
        if row:
            # Pad short rows with the row's last image so that every class starts a new grid row.
            indices += row + [row[-1]] * (columns - len(row))
    if indices:
        buffer = io.BytesIO()
        suspect_grid(generated, indices, columns=columns).save(buffer, format="PNG")
        atomic_write_bytes(out_dir / GRID_FILE, buffer.getvalue())
    atomic_write_text(out_dir / REPORT_FILE, render_html(summary, generated))


def _percent(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.1f} %"


def render_html(summary: InspectSummary, generated: ImageDataset) -> str:
    """``inspect.html``: the findings, the table and the thumbnails, images inline, in the shared
    page look (autoescaped: labels come from prompts)."""
    wanted = {item.index for group in summary.classes for item in group.nearest + group.farthest}
    images = {index: image_data_uri(generated[index][0]) for index in sorted(wanted)}
    template = pages.environment("synthaug.quality").get_template("inspect.html.j2")
    return template.render(s=summary, images=images, measures=MEASURES, labels=LABELS, value=format_value,
                           percent=_percent)
