"""Shard manifests: how workers on other processes or machines commit images without a lock.

A distributed run hands each worker a *shard* (a list of image requests). The worker writes
each image with the usual temp-then-rename step, but its manifest rows go to its own file
``DIR/.manifests/<worker>-<shard>.jsonl`` and its refusals to ``<worker>-<shard>.rejected.jsonl``:
one appender per file, so nothing needs locking across machines. The driver, the only writer
of ``metadata.jsonl`` and ``rejected.jsonl``, merges them:

- a row counts only when its file exists with the recorded sha256 (the same check as a
  resume), and only once per file name (a shard that ran twice after a lost worker gives the
  same file names; the first good row is kept);
- a refusal counts once per ``(label, index, attempt)``;
- merged rows are appended to the driver's files, then the shard files are deleted. A crash
  between the two leaves rows that the next merge finds already committed: merging is
  idempotent and can run at any time (``generate_dataset`` merges leftovers when it resumes).

See ``docs/scaling.md`` for the whole protocol.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthaug.generate.manifest import (
    MANIFEST_NAME,
    REJECTED_NAME,
    JsonlAppender,
    _safe_relative,
    read_jsonl,
    sha256_file,
)

__all__ = [
    "MANIFESTS_DIR",
    "MergedShards",
    "committed_in_shard",
    "merge_shards",
    "refusal_key",
    "shard_paths",
    "unmerged",
    "worker_name",
]

MANIFESTS_DIR = ".manifests"
_REJECTED_SUFFIX = ".rejected.jsonl"


def worker_name() -> str:
    """``<host>-<pid>``: unique among the processes writing one folder, even across machines."""
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}"


def shard_paths(root: Path, worker: str, shard: str) -> tuple[Path, Path]:
    """The manifest and the refusals file of ``shard`` written by ``worker``."""
    folder = root / MANIFESTS_DIR
    return folder / f"{worker}-{shard}.jsonl", folder / f"{worker}-{shard}{_REJECTED_SUFFIX}"


def _shard_files(root: Path, shard: str | None) -> tuple[list[Path], list[Path]]:
    """Manifests and refusal files of ``shard`` (of every shard when ``None``), sorted."""
    folder = root / MANIFESTS_DIR
    if not folder.is_dir():
        return [], []
    pattern = f"*-{shard}" if shard is not None else "*"
    rejected = sorted(folder.glob(f"{pattern}{_REJECTED_SUFFIX}"))
    manifests = sorted(path for path in folder.glob(f"{pattern}.jsonl") if not path.name.endswith(_REJECTED_SUFFIX))
    return manifests, rejected


def _good_rows(root: Path, paths: Iterable[Path], skip: set[str]) -> list[dict[str, Any]]:
    """Rows of ``paths`` whose file exists with the recorded sha256, one per file name not in ``skip``."""
    kept: dict[str, dict[str, Any]] = {}
    for path in paths:
        for row in read_jsonl(path)[0]:  # a torn last line (a worker killed mid-append) is dropped
            file_name = row.get("file_name")
            if not isinstance(file_name, str) or file_name in skip or file_name in kept:
                continue
            image = _safe_relative(root, file_name)
            if image is not None and image.is_file() and sha256_file(image) == row.get("sha256"):
                kept[file_name] = row
    return [kept[name] for name in sorted(kept)]


def refusal_key(row: dict[str, Any]) -> tuple[Any, Any, Any]:
    """A refusal's slot and attempt, ``(label, index, attempt)``: one refusal is counted once."""
    return row.get("label"), row.get("index"), row.get("attempt")


def committed_in_shard(root: Path, shard: str) -> tuple[set[str], set[tuple[Any, Any, Any]]]:
    """What earlier tries of ``shard`` (by workers that died) already committed and had refused.

    A retried shard skips these, so an image that was paid for is not requested again and a
    refusal is not recorded twice.
    """
    manifests, rejected = _shard_files(root, shard)
    files = {row["file_name"] for row in _good_rows(root, manifests, set())}
    refusals = {refusal_key(row) for path in rejected for row in read_jsonl(path)[0]}
    return files, refusals


@dataclass
class MergedShards:
    """What one merge added to the folder's own files.

    Attributes:
        rows: Newly committed manifest rows, sorted by file name.
        rejections: Newly recorded refusals.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)


def unmerged(
    root: Path, committed: set[str], refused: set[tuple[Any, Any, Any]], shard: str | None = None
) -> tuple[MergedShards, list[Path]]:
    """What merging ``shard`` (every shard when ``None``) would add, and the files it would
    delete; reads only (a dry run counts finished shards this way)."""
    manifests, rejected = _shard_files(root, shard)
    merged = MergedShards(rows=_good_rows(root, manifests, committed))
    seen = set(refused)
    for path in rejected:
        for row in read_jsonl(path)[0]:
            key = refusal_key(row)
            if key not in seen:
                seen.add(key)
                merged.rejections.append(row)
    return merged, [*manifests, *rejected]


def merge_shards(
    root: Path, committed: set[str], refused: set[tuple[Any, Any, Any]], shard: str | None = None
) -> MergedShards:
    """Move the rows of ``shard``'s files (of every shard when ``None``) into ``metadata.jsonl``
    and ``rejected.jsonl``, then delete those files.

    Args:
        root: The dataset folder.
        committed: File names already in ``metadata.jsonl``; merged ones are added.
        refused: ``(label, index, attempt)`` already in ``rejected.jsonl``; merged ones are added.
        shard: One shard's id, or ``None`` for everything left in ``DIR/.manifests``.

    Returns:
        The rows and refusals that were new.
    """
    merged, files = unmerged(root, committed, refused, shard)
    for rows, name in ((merged.rows, MANIFEST_NAME), (merged.rejections, REJECTED_NAME)):
        if rows:
            appender = JsonlAppender(root / name)
            try:
                for row in rows:
                    appender.append(row)
            finally:
                appender.close()
    committed.update(row["file_name"] for row in merged.rows)
    refused.update(refusal_key(row) for row in merged.rejections)
    for path in files:
        path.unlink(missing_ok=True)
    return merged


def remove_manifests_dir(root: Path) -> None:
    """Remove ``DIR/.manifests`` once it is empty (a finished run leaves no trace of its shards)."""
    folder = root / MANIFESTS_DIR
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
