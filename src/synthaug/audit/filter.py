"""``filter_dataset``: a cleaned copy of an audited dataset, without touching the original.

The new folder is an image folder that :func:`synthaug.data.load_dataset` opens:

* the kept images, hard-linked from the original files (copied where a hard link is not
  possible, e.g. across file systems); in-memory images (built-in datasets) are written as
  PNGs into ``<class-slug>/<index>.png``;
* ``metadata.jsonl``: one row per kept image: its original record (all provenance fields),
  with ``file_name`` relative to the new folder, plus ``audit_score`` and ``audit_rank``;
* ``dropped.jsonl``: one row per dropped image: ``file_name``, ``label``, ``score``, ``rank``
  and ``reasons`` (why it was dropped); it cannot live in ``metadata.jsonl``, whose every row
  must name an existing image;
* ``filter.json``: the settings, the audit and data it came from, and counts per reason.

The folder is assembled under a temporary name beside ``out_dir`` and renamed at the end,
so an interrupted filter leaves no half-written dataset. Hard links share the file's data
with the original: edit a filtered image in place and the original changes too (replace it
instead).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import synthaug
from synthaug.audit.run import AUDIT_FILE, SCORES_FILE
from synthaug.audit.scores import write_jsonl
from synthaug.data import METADATA_FILE, ImageDataset, safe_join
from synthaug.errors import ConfigError, DataError
from synthaug.fileio import read_jsonl
from synthaug.generate.slug import class_folders

if TYPE_CHECKING:  # the scores are passed in; the CLIP model (transformers) is loaded by the caller
    from synthaug.audit.clip import ClipScores

DROPPED_FILE = "dropped.jsonl"
FILTER_FILE = "filter.json"


@dataclass(frozen=True)
class FilterResult:
    """What :func:`filter_dataset` wrote.

    Attributes:
        out_dir: The new dataset folder.
        kept: Number of images kept.
        dropped: The ``dropped.jsonl`` rows.
        reasons: Number of dropped images per reason kind.
    """

    out_dir: Path
    kept: int
    dropped: list[dict[str, Any]]
    reasons: dict[str, int]


def parse_drop_top(value: str) -> int | float:
    """``"10%"`` -> 0.1 (a fraction), ``"50"`` -> 50 (a count).

    Raises:
        ConfigError: anything else.
    """
    text = value.strip()
    try:
        if text.endswith("%"):
            fraction = float(text[:-1]) / 100
            if not 0 < fraction < 1:
                raise ValueError
            return fraction
        count = int(text)
        if count < 1:
            raise ValueError
        return count
    except ValueError as error:
        raise ConfigError(f"--drop-top {value!r}: give a percentage in (0, 100) like 10% or a count like 50") from error


def read_complete_audit(audit_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``audit.json`` and the ``scores.jsonl`` rows (file order) of the complete audit in ``audit_dir``.

    Raises:
        ConfigError: ``audit_dir`` is not an audit folder, its files are not JSON, or the audit
            did not finish.
    """
    audit_dir = Path(audit_dir)
    missing = [name for name in (AUDIT_FILE, SCORES_FILE) if not (audit_dir / name).is_file()]
    if missing:
        raise ConfigError(
            f"{audit_dir} is not an audit folder (no {missing[0]}); run `synthaug audit DATA --out DIR` first"
        )
    try:
        audit = json.loads((audit_dir / AUDIT_FILE).read_text())
        rows, torn = read_jsonl(audit_dir / SCORES_FILE)
    except ValueError as error:  # json.JSONDecodeError included
        raise ConfigError(f"{audit_dir}: the audit files are not valid JSON ({error}); run the audit again") from error
    if torn:
        raise ConfigError(f"{audit_dir}: {SCORES_FILE} ends in a torn line; run the audit again")
    if audit.get("status") != "complete":
        raise ConfigError(f"{audit_dir}: the audit did not finish; run the same `synthaug audit` again to complete it")
    return audit, rows


def read_audit(audit_dir: Path, data: ImageDataset) -> list[dict[str, Any]]:
    """The ``scores.jsonl`` rows of a complete audit of exactly ``data``, in dataset order.

    Raises:
        ConfigError: ``audit_dir`` is not a complete audit, or it audited other data.
    """
    audit, rows = read_complete_audit(audit_dir)
    scores_file = audit_dir / SCORES_FILE
    audited = audit.get("identity", {}).get("data") or {}
    if audited.get("fingerprint") != data.fingerprint():
        raise ConfigError(
            f"{audit_dir} audited {audited.get('name')!r} ({audited.get('images')} images), not these "
            f"{len(data)} images of {data.name!r}; give the dataset the audit was run on"
        )
    rows.sort(key=lambda row: row["index"])
    if [row["index"] for row in rows] != list(range(len(data))):
        raise ConfigError(f"{scores_file}: does not hold one row per image; run the audit again")
    return rows


def drop_reasons(
    rows: list[dict[str, Any]],
    *,
    drop_top: int | float | None = None,
    threshold: float | None = None,
    drop_label_issues: bool = False,
    drop_duplicates: bool = False,
    drop_leakage: bool = True,
    per_class: bool = False,
    also: Mapping[int, Sequence[str]] | None = None,
) -> dict[int, list[str]]:
    """Why each image is dropped, by dataset index (images kept are absent).

    Args:
        rows: ``scores.jsonl`` rows.
        drop_top: Drop the highest-scoring images: a count (int >= 1) or a fraction in (0, 1).
        threshold: Drop every image whose combined score is at least this.
        drop_label_issues: Drop the images confident learning flags as label issues.
        drop_duplicates: Drop copies of earlier images of the set (one of each group stays)
            and copies of reference images.
        drop_leakage: Drop copies of test images.
        per_class: Apply ``drop_top`` within each class (the top 10 % of every class) rather
            than over the whole set. Suspects cluster in the classes a generator confuses
            (measured: a set-wide top 10 % of 1,000 generated Fashion-MNIST images took 51 of
            the 100 shirts), so a set-wide cut can unbalance the classes.
        also: Reasons found outside the audit (:func:`clip_drop_reasons`), by dataset index,
            merged in; given, it counts as a rule to drop by.
    """
    if drop_top is not None and threshold is not None:
        raise ConfigError("give --drop-top or --threshold, not both")
    if drop_top is None and threshold is None and not drop_label_issues and not drop_duplicates and also is None:
        raise ConfigError("say what to drop: --drop-top, --threshold, --drop-label-issues or --drop-duplicates")
    if per_class and drop_top is None:
        raise ConfigError("per_class applies to drop_top; give --drop-top with --per-class")
    if isinstance(drop_top, float) and not 0 < drop_top < 1:
        raise ConfigError(f"drop_top as a fraction must be in (0, 1), got {drop_top}")
    if not isinstance(drop_top, float) and drop_top is not None and (isinstance(drop_top, bool) or drop_top < 1):
        raise ConfigError(f"drop_top as a count must be >= 1, got {drop_top}")
    # The rank of each row among the rows it competes with (rank 1 = highest score), and how
    # many of those are dropped.
    groups: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["label"] if per_class else None, []).append(row)
    top_rank: dict[int, int] = {}
    top_count: dict[Any, int] = {}
    for group, members in groups.items():
        count = drop_top if not isinstance(drop_top, float) else int(round(drop_top * len(members)))
        top_count[group] = count or 0
        for position, row in enumerate(sorted(members, key=lambda r: r["rank"]), start=1):
            top_rank[row["index"]] = position
    reasons: dict[int, list[str]] = {}

    def add(row: dict[str, Any], reason: str) -> None:
        reasons.setdefault(row["index"], []).append(reason)

    for row in rows:
        group = row["label"] if per_class else None
        if drop_top is not None and top_rank[row["index"]] <= top_count[group]:
            scope = f" of class {row['label']}" if per_class else ""
            add(row, f"top {top_count[group]} score{scope} (rank {top_rank[row['index']]}, score {row['score']:.4f})")
        if threshold is not None and row["score"] >= threshold:
            add(row, f"score {row['score']:.4f} >= threshold {threshold}")
        if drop_label_issues and row.get("label_issue"):
            add(row, f"label issue (confident learning; predicted {row.get('cv_predicted')})")
        if drop_duplicates and row.get("duplicate_of") is not None:
            add(row, f"duplicate of {row['duplicate_of']} (similarity {row['duplicate_similarity']:.4f})")
        if drop_duplicates and row.get("reference_match") is not None:
            add(row, f"copy of reference image {row['reference_match']} (similarity {row['reference_similarity']:.4f})")
        if drop_leakage and row.get("leakage"):
            add(row, f"leakage: copy of test image {row['test_match']} (similarity {row['test_similarity']:.4f})")
    for index, more in (also or {}).items():
        reasons.setdefault(index, []).extend(more)
    return reasons


def clip_drop_reasons(
    scores: ClipScores, classes: Sequence[str], *, min_clip_score: float | None = None, class_agreement: bool = False
) -> dict[int, list[str]]:
    """Why CLIP drops each image, by dataset index: a CLIPScore below ``min_clip_score``
    (image far from its prompt), or, with ``class_agreement``, a zero-shot class other than
    the image's label (see :mod:`synthaug.audit.clip`).

    Raises:
        ConfigError: neither rule is given.
    """
    if min_clip_score is None and not class_agreement:
        raise ConfigError("with --clip, say what to drop: --min-clip-score X or --clip-class-agreement")
    reasons: dict[int, list[str]] = {}
    for index, (score, agrees, predicted) in enumerate(zip(scores.prompt_score, scores.agreement, scores.predicted)):
        if min_clip_score is not None and score < min_clip_score:
            reasons.setdefault(index, []).append(f"CLIP score {score:.2f} < {min_clip_score:g}")
        if class_agreement and not agrees:
            reasons.setdefault(index, []).append(f"CLIP class: zero-shot says {classes[predicted]}")
    return reasons


def _reason_kind(reason: str) -> str:
    for prefix, kind in (("top ", "top score"), ("score ", "threshold"), ("label issue", "label issue"),
                         ("duplicate", "duplicate"), ("copy of reference", "reference copy"),
                         ("leakage", "leakage"), ("CLIP score", "clip score"), ("CLIP class", "clip class")):
        if reason.startswith(prefix):
            return kind
    return reason


def _place(source: Path, destination: Path) -> None:
    """Hard-link ``source`` at ``destination``, or copy it where links are impossible."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def filter_dataset(
    data: ImageDataset,
    audit_dir: str | Path | None,
    out_dir: str | Path,
    drop_top: int | float | None = None,
    threshold: float | None = None,
    *,
    drop_label_issues: bool = False,
    drop_duplicates: bool = False,
    drop_leakage: bool = True,
    per_class: bool = False,
    clip: ClipScores | None = None,
    min_clip_score: float | None = None,
    clip_class_agreement: bool = False,
) -> FilterResult:
    """Write a copy of ``data`` without the images the audit in ``audit_dir`` (or CLIP) marks.

    See the module docstring for the folder written, and :func:`drop_reasons` and
    :func:`clip_drop_reasons` for the options. ``data`` is never modified.

    Args:
        data: The dataset the audit was run on (checked by fingerprint).
        audit_dir: The folder written by :func:`synthaug.audit.audit_dataset`; ``None`` to
            filter by CLIP alone.
        out_dir: The new dataset folder; must not exist yet (or be empty).
        clip: CLIP scores of ``data`` (:meth:`synthaug.audit.clip.ClipScorer.score`), for
            ``min_clip_score`` and ``clip_class_agreement``.

    Returns:
        The :class:`FilterResult`.

    Raises:
        ConfigError: bad options, ``out_dir`` exists, or the audit does not match ``data``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"{out_dir} already exists; choose a new --out (filter never overwrites)")
    if data.root is not None and out_dir.resolve().is_relative_to(data.root.resolve()):
        raise ConfigError(f"{out_dir} is inside the dataset folder {data.root}; write the filtered copy elsewhere")
    clip_rules = min_clip_score is not None or clip_class_agreement
    if clip_rules and clip is None:
        raise ConfigError("--min-clip-score and --clip-class-agreement need CLIP scores: give --clip MODEL_DIR")
    also = None if not clip_rules else clip_drop_reasons(clip, data.classes, min_clip_score=min_clip_score,
                                                           class_agreement=clip_class_agreement)
    if audit_dir is None:
        if drop_top is not None or threshold is not None or drop_label_issues or drop_duplicates:
            raise ConfigError(
                "--drop-top, --threshold, --drop-label-issues and --drop-duplicates need --audit AUDIT_DIR"
            )
        if also is None:
            raise ConfigError("say what to drop: give --audit AUDIT_DIR with its rules, or --clip MODEL_DIR with "
                              "--min-clip-score or --clip-class-agreement")
        rows = [{"index": index, "file_name": str(record.get("file_name") or index), "label": data.classes[label],
                 "score": None, "rank": None} for index, (record, label) in enumerate(zip(data.records, data.targets))]
        reasons = dict(also)
    else:
        audit_dir = Path(audit_dir)
        rows = read_audit(audit_dir, data)
        reasons = drop_reasons(rows, drop_top=drop_top, threshold=threshold, drop_label_issues=drop_label_issues,
                               per_class=per_class, drop_duplicates=drop_duplicates, drop_leakage=drop_leakage,
                               also=also)
    kept_indices = [row["index"] for row in rows if row["index"] not in reasons]
    if not kept_indices:
        raise ConfigError("these settings drop every image; drop fewer")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # mkdir (unlike tempfile.mkdtemp) gives the folder the user's usual permissions.
    staging = out_dir.parent / f".{out_dir.name}.partial-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        files = data.files
        folders = class_folders(data.classes)
        width = len(str(len(data) - 1))
        metadata, used = [], {}
        for index in kept_indices:
            record, row = dict(data.records[index]), rows[index]
            if files[index] is not None:
                file_name = str(record["file_name"])
                _place_checked(files[index], staging, file_name, used, index)
            else:
                file_name = f"{folders[row['label']]}/{index:0{width}d}.png"
                destination = safe_join(staging, file_name)
                destination.parent.mkdir(parents=True, exist_ok=True)
                data[index][0].save(destination)
            kept_row = {**record, "file_name": file_name, "label": row["label"]}
            if audit_dir is not None:
                kept_row.update(audit_score=row["score"], audit_rank=row["rank"])
            if clip is not None:
                kept_row.update(clip_score=float(clip.prompt_score[index]), clip_agreement=bool(clip.agreement[index]))
            metadata.append(kept_row)
        dropped = [{"file_name": rows[index]["file_name"], "label": rows[index]["label"],
                    "score": rows[index]["score"], "rank": rows[index]["rank"], "reasons": reasons[index]}
                   for index in sorted(reasons, key=lambda i: (rows[i]["rank"] or 0, i))]
        write_jsonl(staging / METADATA_FILE, metadata)
        write_jsonl(staging / DROPPED_FILE, dropped)
        counts = Counter(_reason_kind(reason) for row in dropped for reason in row["reasons"])
        settings = {"drop_top": drop_top, "threshold": threshold, "drop_label_issues": drop_label_issues,
                    "drop_duplicates": drop_duplicates, "drop_leakage": drop_leakage, "per_class": per_class,
                    "clip": None if clip is None else clip.model, "min_clip_score": min_clip_score,
                    "clip_class_agreement": clip_class_agreement}
        (staging / FILTER_FILE).write_text(json.dumps({
            "source": {"name": data.name, "images": len(data), "fingerprint": data.fingerprint()},
            "audit": None if audit_dir is None else str(audit_dir.resolve()),
            "settings": settings,
            "kept": len(kept_indices),
            "dropped": len(dropped),
            "dropped_by_reason": dict(counts),
            "synthaug_version": synthaug.__version__,
        }, indent=2) + "\n")
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above); rename needs the name free
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return FilterResult(out_dir=out_dir, kept=len(kept_indices), dropped=dropped, reasons=dict(counts))


def _place_checked(source: Path, root: Path, file_name: str, used: dict[str, int], index: int) -> None:
    if file_name in used:
        raise DataError(
            f"images {used[file_name]} and {index} of the dataset both have file_name {file_name!r}; "
            "filter one folder at a time"
        )
    used[file_name] = index
    _place(source, safe_join(root, file_name))

