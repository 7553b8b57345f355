"""The predictions file: probability samples, labels and class names in one ``.npz``.

Layout (plain numpy arrays, readable without synthaug and without pickle):

* ``probs``: float ``(S, N, C)`` probability samples (S = 1 for a deterministic model),
* ``labels``: int64 ``(N,)`` true class indices,
* ``classes`` (optional): unicode ``(C,)`` class names, index -> name.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from synthaug.errors import DataError
from synthaug.fileio import write_atomically
from synthaug.metrics._shapes import as_labels, as_predictions, as_probability_samples

# The first bytes of a .npy file (a .npz is a zip archive of them).
NPY_MAGIC = b"\x93NUMPY"


class Predictions(NamedTuple):
    """The contents of a predictions file; unpacks as ``probs, labels, classes``.

    Attributes:
        probs: ``(S, N, C)`` probability samples.
        labels: ``(N,)`` int64 class indices, or None for out-of-distribution data (a file
            written with ``labels=None``, read with ``require_labels=False``).
        classes: Class names (index -> name), or None when the file has none.
    """

    probs: np.ndarray
    labels: np.ndarray | None
    classes: list[str] | None


def save_predictions(
    path: str | os.PathLike, probs: Any, labels: Any, classes: list[str] | None = None
) -> Path:
    """Write a predictions file (``.npz``), replacing any file at ``path`` in one step.

    The file is written next to ``path`` first and then renamed over it, so a crash never
    leaves a half-written file. Parent folders are created.

    Args:
        path: Where to write; written exactly there (no suffix is appended).
        probs: Probabilities ``(S, N, C)`` or ``(N, C)`` (stored as ``(1, N, C)``), numpy or torch.
        labels: Integer class indices ``(N,)``, or None for out-of-distribution data, whose
            images belong to none of the model's classes (the file then holds no labels).
        classes: Optional class names, one per class (length C).

    Returns:
        The path written.

    Raises:
        DataError: invalid probabilities, labels or class names.
    """
    if labels is None:
        samples = as_probability_samples(probs)
        arrays = {"probs": samples}
    else:
        samples, labels = as_predictions(probs, labels)
        arrays = {"probs": samples, "labels": labels}
    if classes is not None:
        arrays["classes"] = _class_names(classes, samples.shape[2])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda file: np.savez(file, **arrays))
    return path


def load_predictions(path: str | os.PathLike, *, require_labels: bool = True) -> Predictions:
    """Read and validate a predictions file written by :func:`save_predictions`.

    Args:
        path: A ``.npz`` file holding ``probs`` and ``labels`` (and optionally ``classes``).
        require_labels: Refuse a file without ``labels``; pass False for out-of-distribution
            predictions, which need none (``labels`` is then None when absent).

    Returns:
        ``Predictions(probs (S, N, C), labels (N,), classes or None)``.

    Raises:
        DataError: (one line, naming the file) the file is missing, is not an ``.npz``
            archive, holds pickled objects, lacks ``probs`` or ``labels``, or holds arrays of
            the wrong shape, type or range.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such predictions file; pass a .npz written by `synthaug predict`")
    with open(path, "rb") as file:
        magic = file.read(len(NPY_MAGIC))
    if magic == NPY_MAGIC:
        raise DataError(f"{path}: holds a single .npy array, expected a .npz archive with 'probs' and 'labels'")
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path}: is not a .npz archive (not a zip file); write it with synthaug.metrics.save_predictions"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = ({"probs", "labels"} if require_labels else {"probs"}) - set(archive.files)
            if missing:
                raise DataError(
                    f"{path}: missing array(s) {', '.join(sorted(missing))} "
                    f"(found: {', '.join(archive.files) or 'none'}); "
                    "a predictions file holds 'probs' (S, N, C) and 'labels' (N,)"
                )
            arrays = {name: archive[name] for name in archive.files if name in {"probs", "labels", "classes"}}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        # Object arrays need pickle, which is refused because loading it can run code.
        raise DataError(
            f"{path}: not a readable .npz predictions file ({_first_line(error)}); "
            "write it with synthaug.metrics.save_predictions"
        ) from error
    probs = as_probability_samples(arrays["probs"], name=f"{path}: probs")
    labels = None
    if "labels" in arrays:
        labels = as_labels(arrays["labels"], probs.shape[1], probs.shape[2], name=f"{path}: labels")
    classes = None
    if "classes" in arrays:
        classes = _class_names(arrays["classes"], probs.shape[2], name=f"{path}: classes").tolist()
    return Predictions(probs=probs, labels=labels, classes=classes)


def _class_names(classes: Any, n_classes: int, name: str = "classes") -> np.ndarray:
    """Return class names as a unicode ``(C,)`` array, checking there is one per class."""
    array = np.asarray(classes)
    if array.ndim != 1 or array.shape[0] != n_classes:
        raise DataError(f"{name}: expected {n_classes} class names (one per column of probs), got shape {array.shape}")
    if array.dtype.kind != "U" or not all(isinstance(item, str) for item in classes):
        raise DataError(f"{name}: class names must be strings, got dtype {array.dtype}")
    return array


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
