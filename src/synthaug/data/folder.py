"""Image folders: the torchvision ``ImageFolder`` layout and Hugging Face ``imagefolder``.

Two layouts load, and nothing in the folder is ever written, moved or deleted:

* ``root/<class>/<image>`` (torchvision ``ImageFolder``): class names are the sub-folder
  names, sorted; images are found recursively inside each class folder (hidden files and
  folders, whose names start with ``.``, are ignored, and so are files without an image
  extension).
* ``root/metadata.jsonl`` (Hugging Face ``imagefolder``): one JSON object per line with
  ``file_name`` (path relative to ``root``) and ``label`` (the class name); any other fields
  (prompt, seed, backend, ...) are kept in :attr:`ImageDataset.records`. When this file
  exists it is the source of truth: labels come from it, images not listed in it are
  ignored, images load sorted by ``file_name`` (not in row order, which records when each
  image was committed), and the class list is the sorted set of its labels. synthaug writes
  generated datasets this way (images in ``root/<class-slug>/``), so they also load with
  ``datasets.load_dataset("imagefolder", data_dir=root)``.

Paths in ``metadata.jsonl`` may not leave ``root`` (no absolute paths, no ``..``); symbolic
links inside the folder are followed, as they are the owner's choice.

Every image is checked when the folder is loaded (cheaply, see
:func:`synthaug.data.dataset.image_file_problem`; damage that only decoding reveals raises a
:class:`~synthaug.errors.DataError` naming the file when the image is used, and
:func:`check_image_folder` finds it all up front). Any problem is a one-line
:class:`~synthaug.errors.DataError` naming the file (and the line of ``metadata.jsonl``),
unless ``skip_bad=True``, which skips the bad item and lists it in ``dataset.skipped``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from synthaug.data.dataset import ImageDataset, image_file_problem
from synthaug.errors import DataError

METADATA_FILE = "metadata.jsonl"

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
"""File extensions taken as images in the class-folder layout (torchvision's list)."""


class _Problems:
    """Collects bad items when skipping, raises on the first one otherwise."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.skipped: list[tuple[str, str]] = []

    def report(self, where: str, problem: str, advice: str) -> None:
        if not self.skip_bad:
            raise DataError(f"{where}: {problem}; {advice}, or load with skip_bad=True (--skip-bad) to skip it")
        self.skipped.append((where, problem))


def relative_path_problem(file_name: str) -> str | None:
    """Why ``file_name`` cannot be a path inside a dataset root, or ``None`` if it can.

    Rejects empty names, absolute paths (POSIX or Windows, with or without a drive) and any
    ``..`` component, so a manifest can never name a file outside its folder.
    """
    if not file_name:
        return "file_name is empty"
    for pure in (PurePosixPath(file_name), PureWindowsPath(file_name)):
        if pure.is_absolute() or pure.drive or pure.root:
            return f"file_name {file_name!r} is an absolute path; give it relative to the dataset folder"
        if ".." in pure.parts:
            return f"file_name {file_name!r} escapes the dataset folder through '..'"
    return None


def safe_join(root: Path, relative: str) -> Path:
    """``root / relative``, refusing any ``relative`` that would leave ``root``.

    Raises:
        DataError: for absolute paths and ``..`` components.
    """
    problem = relative_path_problem(relative)
    if problem is not None:
        raise DataError(f"{root}: {problem}")
    return root / PurePosixPath(relative)


def _entries_from_metadata(root: Path, problems: _Problems) -> list[tuple[Path, dict[str, Any]]]:
    metadata = root / METADATA_FILE
    entries: list[tuple[Path, dict[str, Any]]] = []
    first_line_of: dict[str, int] = {}
    for line_number, raw_line in enumerate(metadata.read_bytes().splitlines(), start=1):
        where = f"{metadata}:{line_number}"
        fix = "fix or remove the line"
        if not raw_line.strip():
            continue
        try:
            row = json.loads(raw_line.decode("utf-8"))
        except UnicodeDecodeError:
            problems.report(where, "line is not UTF-8 text", fix)
            continue
        except json.JSONDecodeError as error:
            problems.report(where, f"malformed JSON ({error.msg} at column {error.colno})", fix)
            continue
        if not isinstance(row, dict):
            problems.report(where, "row is not a JSON object", fix)
            continue
        file_name, label = row.get("file_name"), row.get("label")
        if not isinstance(file_name, str):
            problems.report(where, "row has no 'file_name' string", fix)
            continue
        if not isinstance(label, str) or not label:
            problems.report(where, f"row has no 'label' class-name string (got {label!r})", fix)
            continue
        problem = relative_path_problem(file_name)
        if problem is not None:
            problems.report(where, problem, fix)
            continue
        if file_name in first_line_of:
            first = first_line_of[file_name]
            problems.report(where, f"file_name {file_name!r} is listed again (first on line {first})", fix)
            continue
        first_line_of[file_name] = line_number
        path = root / PurePosixPath(file_name)
        if not path.is_file():
            problems.report(where, f"file_name {file_name!r} does not exist in {root}", "restore the file or " + fix)
            continue
        entries.append((path, row))
    if not entries and not problems.skipped:
        raise DataError(f"{metadata}: has no rows; add one JSON object per image with 'file_name' and 'label'")
    # Sorted by file name, as ImageFolder sorts its files: the order of the rows is the order
    # in which images were committed, which on several workers is the order in which their
    # shards happened to finish. A dataset's order decides its shuffles and subsamples, so
    # the same images must load in the same order however they were generated.
    return sorted(entries, key=lambda entry: entry[1]["file_name"])


def _is_hidden(path: Path, below: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(below).parts)


def _entries_from_class_folders(root: Path, problems: _Problems) -> list[tuple[Path, dict[str, Any]]]:
    class_dirs = sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
    if not class_dirs:
        raise DataError(
            f"{root}: has no class sub-folders and no {METADATA_FILE}; expected root/<class>/<image> "
            f"(torchvision ImageFolder) or a {METADATA_FILE} with 'file_name' and 'label' rows"
        )
    entries: list[tuple[Path, dict[str, Any]]] = []
    for class_dir in class_dirs:
        images = sorted(
            path
            for path in class_dir.rglob("*")
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file() and not _is_hidden(path, class_dir)
        )
        if not images:
            problems.report(
                str(class_dir),
                f"class folder has no images (looked for {', '.join(IMAGE_EXTENSIONS)})",
                "add images or remove the folder",
            )
        for path in images:
            entries.append((path, {"file_name": path.relative_to(root).as_posix(), "label": class_dir.name}))
    return entries


def _scan(root: Path, problems: _Problems) -> tuple[list[Path], list[dict[str, Any]]]:
    """The image files of a folder and their records, after the quick per-file check."""
    if not root.exists():
        raise DataError(f"{root}: no such folder; check the path")
    if not root.is_dir():
        raise DataError(
            f"{root}: is a file, not a folder; pass the folder holding the class folders or {METADATA_FILE}"
        )
    metadata = root / METADATA_FILE
    try:
        if metadata.is_file():
            entries = _entries_from_metadata(root, problems)
        else:
            entries = _entries_from_class_folders(root, problems)
    except OSError as error:
        raise DataError(f"{root}: cannot read the folder ({error}); check its permissions") from error
    paths, records = [], []
    for path, record in entries:
        problem = image_file_problem(path)
        if problem is None:
            paths.append(path)
            records.append(record)
        else:
            problems.report(str(path), problem, "replace or remove the file")
    return paths, records


def load_image_folder(root: str | Path, *, skip_bad: bool = False, name: str | None = None) -> ImageDataset:
    """Load an image folder (class sub-folders or ``metadata.jsonl``; see the module docs).

    Args:
        root: The dataset folder.
        skip_bad: Skip bad files and malformed manifest rows (listed in ``.skipped``)
            instead of raising.
        name: Name of the dataset; defaults to ``str(root)``.

    Raises:
        DataError: one line naming the file (and manifest line) and what to do.
    """
    root = Path(root)
    problems = _Problems(skip_bad)
    paths, records = _scan(root, problems)
    if not paths:
        if problems.skipped:
            where, problem = problems.skipped[0]
            raise DataError(
                f"{root}: no usable images ({len(problems.skipped)} bad item(s) skipped, first: {where}: {problem})"
            )
        raise DataError(f"{root}: no images found")
    classes = sorted({record["label"] for record in records})
    index_of = {name: index for index, name in enumerate(classes)}
    return ImageDataset.from_files(
        paths,
        [index_of[record["label"]] for record in records],
        classes,
        records,
        name=str(root) if name is None else name,
        root=root,
        skipped=problems.skipped,
    )


@dataclass(frozen=True)
class FolderCheck:
    """Result of :func:`check_image_folder`."""

    class_counts: dict[str, int]
    """Good images per class name, classes sorted."""
    bad: list[tuple[str, str]]
    """``(file or manifest line, reason)`` for every bad item."""


def check_image_folder(root: str | Path) -> FolderCheck:
    """Check every item of an image folder thoroughly, decoding each image.

    Loading checks images only cheaply; this also finds damage that shows only when
    decoding (e.g. a truncated JPEG), and lists every bad item instead of stopping at the
    first. Nothing is modified.

    Raises:
        DataError: if the folder is missing or is not an image folder at all.
    """
    problems = _Problems(skip_bad=True)
    paths, records = _scan(Path(root), problems)
    counts: dict[str, int] = {}
    for path, record in zip(paths, records):
        problem = image_file_problem(path, decode=True)
        if problem is None:
            counts[record["label"]] = counts.get(record["label"], 0) + 1
        else:
            problems.skipped.append((str(path), problem))
    return FolderCheck(dict(sorted(counts.items())), problems.skipped)
