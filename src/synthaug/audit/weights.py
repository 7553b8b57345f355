"""Per-example training weights from an audit: trust each image as much as its label deserves.

The weight of an image is the out-of-sample probability of its given label, the
``1 - cv_label_error`` column of ``scores.jsonl`` (the self-confidence score of confident
learning, computed from the audit's cross-validated predictions, so no model judged an image
it had trained on), clipped below at ``floor``; an image that copies a test image gets weight
0, as :func:`~synthaug.audit.filter_dataset` drops it by default (training on a copy of a
test image would inflate the test score).

This is a soft version of confident learning's pruning: instead of removing the images whose
label the out-of-sample model does not believe, it lets each image count in proportion to how
believable its label is. A probability is used rather than the combined ``score``: the
combined score is a rank, uniformly spread over (0, 1] whatever the noise, so weighting by it
would discount half of even a perfectly clean set, while the probability of a correct label
stays close to 1. The floor keeps every image in play, since the fold models are themselves
imperfect (a hard, correctly labelled image must not vanish from training).

The weights reach training through ``ImageDataset.sample_weights`` (see
:func:`synthaug.data.concat_datasets` for how they combine with per-set mixing weights), which
every registered method hands to the shared training loop.

References:
    Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in Dataset
    Labels", JAIR 70, 2021.
    Kuan & Mueller, "Model-agnostic label quality scoring to detect real-world label errors",
    ICML DataPerf workshop, 2022 (self-confidence as the label-quality score).
    Liu & Tao, "Classification with Noisy Labels by Importance Reweighting", IEEE TPAMI 38(3),
    2016 (reweighting examples by how likely their observed label is clean).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthaug.audit.filter import read_complete_audit
from synthaug.audit.run import SCORES_FILE, _audited_name
from synthaug.data import ImageDataset
from synthaug.errors import ConfigError, DataError

DEFAULT_WEIGHT_FLOOR = 0.1
"""Smallest weight an image keeps (unless it leaks a test image), as a share of a fully
trusted image's."""


@dataclass(frozen=True)
class AuditScores:
    """The ``scores.jsonl`` rows of a complete audit, by the ``file_name`` of their image.

    Attributes:
        audit_dir: The audit folder.
        rows: Rows keyed by ``file_name`` (the position, as a string, for in-memory images).
        fingerprint: Fingerprint of the audited dataset (from ``audit.json``).
    """

    audit_dir: Path
    rows: dict[str, dict[str, Any]]
    fingerprint: str | None

    @property
    def scores_file(self) -> Path:
        return self.audit_dir / SCORES_FILE

    def names(self, data: ImageDataset) -> list[str] | None:
        """The audit's name of each image of ``data``, or ``None`` where ``data`` cannot be
        matched by name (in-memory images, named by position, unless ``data`` is the audited
        dataset itself)."""
        if data.fingerprint() == self.fingerprint:
            return [_audited_name(data, i) for i in range(len(data))]
        if any(not record.get("file_name") for record in data.records):
            return None
        return [str(record["file_name"]) for record in data.records]

    def overlaps(self, data: ImageDataset) -> bool:
        """Whether the audit holds a row for at least one image of ``data``."""
        names = self.names(data)
        return names is not None and any(name in self.rows for name in names)


def read_scores(audit_dir: str | Path) -> AuditScores:
    """Read the scores of the complete audit in ``audit_dir``.

    Raises:
        ConfigError: ``audit_dir`` is not a complete audit.
    """
    audit_dir = Path(audit_dir)
    audit, rows = read_complete_audit(audit_dir)
    fingerprint = (audit.get("identity", {}).get("data") or {}).get("fingerprint")
    return AuditScores(audit_dir, {str(row["file_name"]): row for row in rows}, fingerprint)


def label_trust(row: dict[str, Any], floor: float = DEFAULT_WEIGHT_FLOOR) -> float:
    """The weight of one ``scores.jsonl`` row (see the module docstring)."""
    if row.get("leakage"):
        return 0.0
    return max(floor, 1.0 - float(row["cv_label_error"]))


def audit_weights(
    data: ImageDataset, audit: str | Path | AuditScores, *, floor: float = DEFAULT_WEIGHT_FLOOR
) -> np.ndarray:
    """Per-example training weights for ``data`` from an audit, matched by ``file_name``.

    ``data`` may be the audited dataset or any dataset whose images the audit covers (a
    subset, a filtered copy: its files keep their ``file_name``); use the result as
    ``data.with_sample_weights(weights)``.

    Args:
        data: The images to weight.
        audit: An audit folder written by :func:`synthaug.audit.audit_dataset`, or its
            :func:`read_scores`.
        floor: Smallest weight in [0, 1] of an image that does not leak a test image.

    Returns:
        float64 ``(N,)`` in [0, 1].

    Raises:
        ConfigError: ``audit`` is not a complete audit, or ``floor`` is outside [0, 1].
        DataError: the audit does not cover every image of ``data``, or gives an image another label.
    """
    if not 0.0 <= floor <= 1.0:
        raise ConfigError(f"the weight floor must be in [0, 1], got {floor}")
    scores = audit if isinstance(audit, AuditScores) else read_scores(audit)
    names = scores.names(data)
    if names is None:
        raise DataError(
            f"{data.name}: its in-memory images have no file_name to match with {scores.scores_file}; "
            "weight the audited dataset itself, or an image folder"
        )
    missing = [name for name in names if name not in scores.rows]
    if missing:
        raise DataError(
            f"{scores.scores_file} has no row for {len(missing)} of the {len(data)} images of {data.name} "
            f"(e.g. {missing[0]!r}); audit this dataset with `synthaug audit` and use that audit"
        )
    for name, target in zip(names, data.targets):
        if scores.rows[name]["label"] != data.classes[target]:
            raise DataError(
                f"{scores.scores_file}: {name!r} is labelled {scores.rows[name]['label']!r} in the audit but "
                f"{data.classes[target]!r} in {data.name}; audit this dataset again"
            )
    return np.array([label_trust(scores.rows[name], floor) for name in names], dtype=np.float64)


def weight_sets_from_audit(
    parts: list[ImageDataset], audit: str | Path | AuditScores
) -> tuple[list[ImageDataset], list[bool]]:
    """Give the images of every set the audit covers their audit weights.

    A set the audit covers gets ``sample_weights`` times :func:`audit_weights`; the others are
    returned unchanged (weight 1 per image), so real and audited synthetic sets can be mixed.

    Args:
        parts: Training sets, e.g. a real set and a generated one.
        audit: An audit folder or its :func:`read_scores`.

    Returns:
        The sets (covered ones re-weighted) and, per set, whether the audit covered it.

    Raises:
        DataError: The audit covers none of the sets, or only part of one.
    """
    scores = audit if isinstance(audit, AuditScores) else read_scores(audit)
    covered = [scores.overlaps(part) for part in parts]
    if not any(covered):
        raise DataError(
            f"{scores.scores_file} covers none of the --train sets ({', '.join(part.name for part in parts)}); "
            "give --weights-from-audit the audit of one of them (synthaug audit DATA --out AUDIT_DIR)"
        )
    weighted = [part.with_sample_weights(part.sample_weights * audit_weights(part, scores)) if cover else part
                for part, cover in zip(parts, covered)]
    return weighted, covered
