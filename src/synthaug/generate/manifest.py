"""The on-disk commit protocol of a generated dataset.

A generated dataset is ``DIR/<class folder>/<index>.png`` plus ``DIR/metadata.jsonl`` (one
JSON row per image, Hugging Face ``imagefolder`` convention). An image is *committed* when
its row is in the manifest and the file's sha256 matches the row:

1. the PNG bytes are written to ``DIR/<folder>/.synthaug-<name>.tmp``, fsynced and renamed
   to their final name (atomic on POSIX and Windows), and the folder is fsynced;
2. the row is appended to the manifest as one line, flushed and fsynced.

A crash between 1 and 2 leaves a file without a row: it is regenerated from its seed on
resume (same name, so nothing piles up). A crash during 2 leaves a torn last line: it is
dropped. Temporary files only ever match ``.synthaug-*.tmp`` and are removed on resume.
Writers hold an exclusive lock on ``DIR/.synthaug.lock`` (:func:`synthaug.fileio.directory_lock`)
so two runs never interleave.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from synthaug import fileio
from synthaug.errors import GenerationError
from synthaug.fileio import LOCK_NAME, fsync_directory, read_jsonl, sha256_file

# Re-exported: the engine, the runners and the shards import them from here.
__all__ = ["LOCK_NAME", "fsync_directory", "read_jsonl", "sha256_file"]

MANIFEST_NAME = "metadata.jsonl"
CONFIG_NAME = "generation.json"
REJECTED_NAME = "rejected.jsonl"
PROMPTS_NAME = "prompts.json"  # the prompt list a text model wrote (synthaug.generate.expand)
TEMP_PREFIX = ".synthaug-"
TEMP_SUFFIX = ".tmp"
# Files of ours that may sit in a folder that holds no images yet.
OWN_FILES = frozenset({MANIFEST_NAME, CONFIG_NAME, REJECTED_NAME, LOCK_NAME, PROMPTS_NAME})


def utc_now() -> str:
    """The ``created`` time stamp of a row or run record: UTC, to the second, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def temp_path(path: Path) -> Path:
    """The temporary name ``path`` is written under before it is renamed into place."""
    return path.with_name(f"{TEMP_PREFIX}{path.name}{TEMP_SUFFIX}")


def remove_temp_files(root: Path) -> int:
    """Delete our own leftover temporary files in ``root`` and its class folders.

    Returns:
        How many were removed.
    """
    pattern = f"{TEMP_PREFIX}*{TEMP_SUFFIX}"
    leftovers = [*root.glob(pattern), *root.glob(f"*/{pattern}")]
    for path in leftovers:
        path.unlink()
    return len(leftovers)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or all of ``data``.

    Raises:
        GenerationError: The write failed (e.g. the disk is full); the temporary file is
            removed and ``path`` is untouched.
    """
    try:
        # Our own temporary name, so that a resume after a crash finds and removes it.
        fileio.write_atomically(path, lambda handle: handle.write(data), temporary=temp_path(path))
    except OSError as error:
        raise GenerationError(
            f"cannot write {path} ({error.strerror}); free some space or fix permissions, "
            "then rerun the same command to resume"
        ) from error


def row_line(row: dict[str, Any]) -> str:
    """One manifest line: compact JSON (labels kept verbatim, non-ASCII included) and ``\\n``."""
    return fileio.json_line(row)


def rewrite_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Atomically replace ``path`` with ``rows``."""
    atomic_write_bytes(path, "".join(row_line(row) for row in rows).encode("utf-8"))


class JsonlAppender:
    """Appends rows to a JSON-lines file, each one flushed and fsynced before returning."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def append(self, row: dict[str, Any]) -> None:
        """Append one row durably.

        Raises:
            GenerationError: The write failed (e.g. disk full); resume drops the torn line.
        """
        try:
            # One write call, so a crash leaves at most one torn line, always the last.
            self._handle.write(row_line(row))
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as error:
            raise GenerationError(
                f"cannot append to {self.path} ({error.strerror}); free some space, then rerun "
                "the same command to resume"
            ) from error

    def close(self) -> None:
        self._handle.close()


@dataclass
class ManifestScan:
    """What a resume found in the manifest.

    Attributes:
        rows: Committed rows (file present, sha256 matching), in manifest order.
        dropped: ``(file_name, reason)`` of rows that were not kept.
        needs_rewrite: The manifest on disk differs from ``rows`` and must be rewritten.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    needs_rewrite: bool = False


def _safe_relative(root: Path, file_name: Any) -> Path | None:
    """``root / file_name`` when ``file_name`` is a relative POSIX path that stays inside ``root``."""
    if not isinstance(file_name, str) or not file_name or "\\" in file_name:
        return None
    relative = PurePosixPath(file_name)
    if relative.is_absolute() or any(part in ("", ".", "..") for part in relative.parts):
        return None
    return root.joinpath(*relative.parts)


def scan_manifest(root: Path, workers: int = 8) -> ManifestScan:
    """Read ``root/metadata.jsonl`` and keep only rows whose file exists with the recorded sha256.

    Files are hashed in a thread pool (``hashlib`` releases the GIL), so a resume checks a
    large folder at disk speed. When a file name appears twice the later row wins.
    """
    rows, needs_rewrite = read_jsonl(root / MANIFEST_NAME)
    latest: dict[str, int] = {}
    for position, row in enumerate(rows):
        latest[str(row.get("file_name"))] = position
    scan = ManifestScan(needs_rewrite=needs_rewrite or len(latest) != len(rows))

    def check(row: dict[str, Any]) -> str | None:
        path = _safe_relative(root, row.get("file_name"))
        if path is None:
            return "file_name is not a relative path inside the folder"
        if not path.is_file():
            return "file is missing"
        if sha256_file(path) != row.get("sha256"):
            return "sha256 does not match the file"
        return None

    candidates = [rows[position] for position in sorted(latest.values())]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(pool.map(check, candidates))
    for row, reason in zip(candidates, reasons, strict=True):
        if reason is None:
            scan.rows.append(row)
        else:
            scan.dropped.append((str(row.get("file_name")), reason))
    scan.needs_rewrite = scan.needs_rewrite or bool(scan.dropped)
    return scan
