"""``audit_dataset``: score every image of a dataset and write the audit folder.

The audit folder ``AUDIT_DIR`` holds:

* ``scores.jsonl``: one row per image, most suspicious first (see :data:`ROW_FIELDS`);
* ``classes.csv``: one row per class (see :data:`synthaug.audit.summary.CLASS_COLUMNS`);
* ``audit.html``: the worst images per class, leaks and duplicates, self-contained;
* ``audit.json``: settings, seed, synthaug version, fingerprints of the data, the summary;
* ``predictions/``: the cross-validated fold predictions and the reference model, saved as
  they are made, so that running the same audit again resumes instead of retraining.

The dataset itself is only read.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import synthaug
from synthaug.audit.duplicates import find_copies
from synthaug.audit.report import render_report
from synthaug.audit.scores import (
    AuditConfig,
    Log,
    check_reference_classes,
    combined_score,
    confident_learning,
    cross_validated_probabilities,
    import_cleanlab,
    json_value,
    reference_label_probabilities,
    reference_model,
    uncertainty_scores,
    write_jsonl,
)
from synthaug.audit.summary import CLASS_COLUMNS, class_diversity, class_rows, feature_vectors
from synthaug.data import ImageDataset
from synthaug.errors import ConfigError
from synthaug.fileio import atomic_write_text
from synthaug.progress import ProgressCallback

SCORES_FILE = "scores.jsonl"
CLASSES_FILE = "classes.csv"
REPORT_FILE = "audit.html"
AUDIT_FILE = "audit.json"
PREDICTIONS_DIR = "predictions"

ROW_FIELDS = {
    "index": "position of the image in the audited dataset",
    "file_name": "file_name of its record; the index as a string for in-memory images",
    "label": "the given class name",
    "rank": "1 = most suspicious",
    "score": "combined score in (0, 1]: mean of the rank-normalised score components",
    "cv_label_error": "1 - out-of-sample probability of the given label (cleanlab self-confidence)",
    "cv_predicted": "class predicted out of sample by cross-validation",
    "label_issue": "flagged by confident learning (cleanlab find_label_issues)",
    "reference_label_error": "1 - reference model's probability of the given label (null without reference)",
    "reference_predicted": "class the reference model predicts (null without reference)",
    "disagreement": "variation ratio of the cross-validated predictive samples",
    "mutual_information": "epistemic uncertainty of the cross-validated samples, nats",
    "expected_entropy": "aleatoric uncertainty of the cross-validated samples, nats",
    "duplicate_of": "file_name of an earlier image of the set it copies, or null",
    "duplicate_similarity": "thumbnail correlation with it (1 for exact copies)",
    "reference_match": "reference image it copies, or null",
    "reference_similarity": "thumbnail correlation with it",
    "test_match": "test image it copies (leakage), or null",
    "test_similarity": "thumbnail correlation with it",
    "leakage": "it copies a test image",
}
"""Fields of each ``scores.jsonl`` row and their meaning."""


@dataclass(frozen=True)
class AuditResult:
    """What :func:`audit_dataset` wrote, also returned in memory.

    Attributes:
        out_dir: The audit folder.
        rows: The ``scores.jsonl`` rows, most suspicious first.
        class_rows: The ``classes.csv`` rows, in class order.
        summary: Totals (images, label issues, noise rate, copies, leaks, top suspects).
    """

    out_dir: Path
    rows: list[dict[str, Any]]
    class_rows: list[dict[str, Any]]
    summary: dict[str, Any]


def image_name(dataset: ImageDataset, index: int) -> str:
    """How an image of ``dataset`` is named in the audit: its ``file_name``, else its
    index in the array it came from (``fashion-mnist:test[123]``)."""
    record = dataset.records[index]
    if record.get("file_name"):
        return str(record["file_name"])
    return f"{record.get('source', dataset.name)}[{record.get('index', index)}]"


def _audited_name(dataset: ImageDataset, index: int) -> str:
    record = dataset.records[index]
    return str(record["file_name"]) if record.get("file_name") else str(index)


def _describe(dataset: ImageDataset | None) -> dict[str, Any] | None:
    if dataset is None:
        return None
    return {"name": dataset.name, "images": len(dataset), "fingerprint": dataset.fingerprint()}


def _prepare_out_dir(out_dir: Path, identity: dict[str, Any], overwrite: bool) -> None:
    """Create ``out_dir``, or resume the same audit in it; refuse anything else."""
    audit_file = out_dir / AUDIT_FILE
    if audit_file.is_file():
        try:
            previous = json.loads(audit_file.read_text())
        except json.JSONDecodeError as error:
            raise ConfigError(f"{audit_file} is not valid JSON ({error.msg}); choose a new --out") from error
        if previous.get("identity") == identity:
            return  # the same audit: resume, reusing the saved predictions
        if not overwrite:
            raise ConfigError(
                f"{out_dir} holds an audit of other data or with other settings; choose a new --out "
                "or pass --overwrite to replace it"
            )
        shutil.rmtree(out_dir / PREDICTIONS_DIR, ignore_errors=True)
    elif out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"{out_dir} exists and is not an audit folder; choose a new --out")
    out_dir.mkdir(parents=True, exist_ok=True)


def _write_json(path: Path, content: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(content, indent=2, default=json_value) + "\n")


def audit_dataset(
    data: ImageDataset,
    out_dir: str | Path,
    *,
    reference: ImageDataset | None = None,
    reference_model_dir: str | Path | None = None,
    test: ImageDataset | None = None,
    config: AuditConfig | None = None,
    device: str | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    log: Log | None = None,
) -> AuditResult:
    """Score every image of ``data`` for label noise, uncertainty and copies; write ``out_dir``.

    Args:
        data: The images to audit (usually a generated set).
        out_dir: The audit folder (see the module docstring). Running the same audit into
            it again resumes; an audit with other data or settings is refused unless
            ``overwrite``.
        reference: Real images of the same classes: a reference model is trained on them
            (unless ``reference_model_dir``), and images of ``data`` copying them are flagged.
        reference_model_dir: A model saved by ``synthaug train`` (trained on real data) to
            use as the reference model instead of training one.
        test: The test set; images of ``data`` that copy a test image are flagged as leakage.
        config: Audit settings; default :class:`AuditConfig`.
        device: Torch device for training (default: CUDA when present).
        overwrite: Replace an audit of other data or settings in ``out_dir``.
        progress: Called with progress events of the folds and of training.
        log: Called with a one-line message as each stage starts.

    Returns:
        The :class:`AuditResult`.

    Raises:
        ConfigError: bad settings, or ``out_dir`` holds something else.
        DataError: too few images per class, or classes unknown to the reference.
    """
    started = time.perf_counter()
    config = config or AuditConfig()
    import_cleanlab()  # fail before any training if confident learning is not available
    out_dir = Path(out_dir)
    identity = {  # what the saved predictions depend on; plain JSON values, to compare with audit.json
        "config": config.to_dict(),
        "data": _describe(data),
        "reference": _describe(reference),
        "reference_model": None if reference_model_dir is None else str(Path(reference_model_dir).resolve()),
        "test": _describe(test),
    }
    if reference is not None:
        check_reference_classes(data, reference.classes, reference.name)
    model = None
    if reference_model_dir is not None:
        from synthaug.methods import load_method

        model = load_method(reference_model_dir, device=device, progress=progress)
        check_reference_classes(data, model.classes_, f"model {reference_model_dir}")
    used = [name for name in config.score_components
            if name != "reference_label_error" or reference is not None or model is not None]
    if not used:
        raise ConfigError(
            f"none of the score components {list(config.score_components)} can be computed: "
            "reference_label_error needs --reference or --reference-model"
        )
    _prepare_out_dir(out_dir, identity, overwrite)
    header = {"status": "running", "identity": identity, "seed": config.seed,
              "synthaug_version": synthaug.__version__}
    _write_json(out_dir / AUDIT_FILE, header)
    cache = out_dir / PREDICTIONS_DIR

    samples = cross_validated_probabilities(data, config, cache, device=device, progress=progress, log=log)
    mean_probs = samples.astype(np.float64).mean(axis=0)
    labels = np.asarray(data.targets)
    learning = confident_learning(labels, mean_probs)
    per_image: dict[str, np.ndarray] = {
        "cv_label_error": 1.0 - learning.label_quality,
        **uncertainty_scores(samples),
    }
    cv_predicted = mean_probs.argmax(axis=1)

    if model is None and reference is not None:
        model = reference_model(reference, config, cache, device=device, progress=progress, log=log)
    reference_predicted: list[str] | None = None
    if model is not None:
        if log:
            log("scoring the images with the reference model")
        probability_of_label, reference_predicted = reference_label_probabilities(model, data)
        per_image["reference_label_error"] = 1.0 - probability_of_label
    score = combined_score({name: per_image[name] for name in used})
    order = np.lexsort((np.arange(len(data)), -score))  # highest score first, ties by index
    rank = np.empty(len(data), dtype=np.int64)
    rank[order] = np.arange(1, len(data) + 1)

    if log:
        log("looking for exact and near-duplicates")
    within = find_copies(data, None, config.min_similarity)
    against_reference = None if reference is None else find_copies(data, reference, config.min_similarity)
    against_test = None if test is None else find_copies(data, test, config.min_similarity)

    names = [_audited_name(data, i) for i in range(len(data))]
    rows = []
    for i in order:
        row: dict[str, Any] = {
            "index": int(i),
            "file_name": names[i],
            "label": data.classes[labels[i]],
            "rank": int(rank[i]),
            "score": float(score[i]),
            "cv_label_error": float(per_image["cv_label_error"][i]),
            "cv_predicted": data.classes[cv_predicted[i]],
            "label_issue": bool(learning.label_issue[i]),
            "reference_label_error": (float(per_image["reference_label_error"][i])
                                      if reference_predicted is not None else None),
            "reference_predicted": None if reference_predicted is None else reference_predicted[i],
            "disagreement": float(per_image["disagreement"][i]),
            "mutual_information": float(per_image["mutual_information"][i]),
            "expected_entropy": float(per_image["expected_entropy"][i]),
            "duplicate_of": names[within.index[i]] if within.found[i] else None,
            "duplicate_similarity": float(within.similarity[i]) if within.found[i] else None,
            "reference_match": None,
            "reference_similarity": None,
            "test_match": None,
            "test_similarity": None,
            "leakage": False,
        }
        if against_reference is not None and against_reference.found[i]:
            row["reference_match"] = image_name(reference, int(against_reference.index[i]))
            row["reference_similarity"] = float(against_reference.similarity[i])
        if against_test is not None and against_test.found[i]:
            row["test_match"] = image_name(test, int(against_test.index[i]))
            row["test_similarity"] = float(against_test.similarity[i])
            row["leakage"] = True
        rows.append(row)

    if log:
        log("measuring diversity")
    features, feature_kind = feature_vectors(data, model)
    diversity = class_diversity(features, labels, len(data.classes), config.diversity_sample, config.seed)
    reference_diversity = None
    if reference is not None:
        reference_features, _ = feature_vectors(reference, model)
        reference_labels = _labels_in(reference, data.classes)
        reference_diversity = class_diversity(reference_features, reference_labels, len(data.classes),
                                              config.diversity_sample, config.seed)
    flags = {
        "score": score,
        "label_issue": learning.label_issue,
        "cv_correct": cv_predicted == labels,
        "duplicate": within.found,
        "reference_copy": None if against_reference is None else against_reference.found,
        "leakage": None if against_test is None else against_test.found,
    }
    if reference_predicted is not None:
        flags["reference_correct"] = np.array([predicted == data.classes[label]
                                               for predicted, label in zip(reference_predicted, labels)])
    classes_table = class_rows(data, {k: v for k, v in flags.items() if v is not None},
                               learning.noise_rate, diversity, reference_diversity)

    counts = np.bincount(labels, minlength=len(data.classes))
    summary = {
        "images": len(data),
        "label_issues": int(learning.label_issue.sum()),
        "estimated_noise_rate": float(np.nansum(learning.noise_rate * counts) / len(data)),
        "cv_accuracy": float(np.mean(cv_predicted == labels)),
        "reference_agreement": None if "reference_correct" not in flags else float(flags["reference_correct"].mean()),
        "duplicates": int(within.found.sum()),
        "reference_copies": None if against_reference is None else int(against_reference.found.sum()),
        "test_leaks": None if against_test is None else int(against_test.found.sum()),
        "top_suspects": [row["file_name"] for row in rows[:10]],
    }
    write_jsonl(out_dir / SCORES_FILE, rows)
    _write_csv(out_dir / CLASSES_FILE, classes_table)
    report_rows = [dict(row, _test_index=None if against_test is None else int(against_test.index[row["index"]]))
                   for row in rows]
    render_report(
        out_dir / REPORT_FILE, data, report_rows, classes_table, CLASS_COLUMNS,
        {"data_name": data.name, "reference_name": None if reference is None else reference.name,
         "test_name": None if test is None else test.name, "score_components": used,
         "version": synthaug.__version__, "seed": config.seed},
        test=test, per_class=config.report_per_class,
    )
    _write_json(out_dir / AUDIT_FILE, {
        **header,
        "status": "complete",
        "score_components": used,
        "score": "mean of the rank-normalised score components (rank / N, ties averaged); higher = more likely wrong",
        "diversity_features": feature_kind,
        "fields": ROW_FIELDS,
        "summary": summary,
        "seconds": time.perf_counter() - started,
    })
    return AuditResult(out_dir=out_dir, rows=rows, class_rows=classes_table, summary=summary)


def _labels_in(dataset: ImageDataset, classes: list[str]) -> np.ndarray:
    """``dataset``'s labels as indices into ``classes`` (matched by name; -1 if absent)."""
    mapping = np.array([classes.index(name) if name in classes else -1 for name in dataset.classes])
    return mapping[dataset.targets]


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=CLASS_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if json_value(value) is None else json_value(value) for key, value in row.items()})
    atomic_write_text(path, text.getvalue())
