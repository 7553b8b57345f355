"""The one place for durable file writes, file hashes, JSON-lines files and inline PNG text.

Every file synthaug produces is either written whole and renamed into place (readers see the
old file or the new one, never half of one) or appended one fsynced line at a time (a crash
leaves at most a torn last line, which the readers here drop). Nothing else in the package
writes-then-renames or parses JSON lines by hand.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from synthaug.errors import DataError, SynthaugError

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from PIL import Image

__all__ = [
    "LOCK_NAME",
    "append_jsonl",
    "atomic_write_bytes",
    "atomic_write_text",
    "directory_lock",
    "fsync_directory",
    "from_json_value",
    "json_line",
    "png_base64",
    "read_jsonl",
    "rewrite_jsonl",
    "sha256_bytes",
    "sha256_file",
    "to_json_value",
    "write_atomically",
]


#: The lock file a writer of a folder holds (a generated dataset, a study's run folder).
LOCK_NAME = ".synthaug.lock"


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make a rename inside ``directory`` durable (a no-op where directories cannot be opened)."""
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(
    path: str | os.PathLike[str],
    write: Callable[[IO[bytes]], object],
    *,
    durable: bool = True,
    temporary: str | os.PathLike[str] | None = None,
) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    Args:
        path: The final file.
        write: Writes the whole content to the binary file it is given.
        durable: fsync the file and its folder, so the new content survives a power cut
            (results, manifests); ``False`` for caches that can be recomputed.
        temporary: The temporary file, for a caller whose resume recognises and removes its
            own leftovers by name (a generated dataset's ``.synthaug-*.tmp``); by default
            ``.<name>.<pid>.partial`` beside ``path``.

    Raises:
        OSError: The write failed; the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    # The pid keeps two processes that write the same file (two workers finishing the same
    # retried unit) from sharing a temporary file.
    partial = Path(temporary) if temporary is not None else path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(partial, "wb") as handle:
            write(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(partial, path)
        if durable:
            fsync_directory(path.parent)
    finally:
        partial.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`write_atomically`)."""
    write_atomically(path, lambda handle: handle.write(data), durable=durable)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, durable: bool = True) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically (see :func:`write_atomically`)."""
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 digest of a file's bytes (read in blocks; ``hashlib`` releases the GIL)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def to_json_value(value: Any) -> Any:
    """``value`` with numpy scalars made Python numbers, tuples made lists and non-finite
    floats made strings (``"nan"``, ``"inf"``), so that a file is strict JSON any tool reads."""
    if isinstance(value, Mapping):
        return {str(key): to_json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(item) for item in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def from_json_value(value: Any) -> Any:
    """Inverse of :func:`to_json_value` for the non-finite floats: every ``"nan"``, ``"inf"`` or
    ``"-inf"`` string in ``value`` becomes a float, so give it only values known to hold numbers."""
    if isinstance(value, dict):
        return {key: from_json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_json_value(item) for item in value]
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return value


def json_line(row: Mapping[str, Any], *, sort_keys: bool = False) -> str:
    """One JSON-lines line: compact strict JSON (non-ASCII kept verbatim) and ``\\n``."""
    return json.dumps(to_json_value(row), ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys) + "\n"


def read_jsonl(path: str | os.PathLike[str], *, floats: Collection[str] = ()) -> tuple[list[dict[str, Any]], bool]:
    """Read a JSON-lines file written by :func:`append_jsonl` or :func:`rewrite_jsonl`.

    A missing file is empty. Values come back as written: a label or prompt that reads
    ``"nan"`` stays a string. :func:`to_json_value` writes a non-finite float as the string
    ``"nan"``, ``"inf"`` or ``"-inf"`` (strict JSON has no such numbers), and only the caller
    knows which fields hold numbers, so it names them.

    Args:
        path: The file.
        floats: Keys whose values (at any depth below the key) are numbers: the strings
            ``"nan"``, ``"inf"`` and ``"-inf"`` there come back as floats (e.g. ``("metrics",)``).

    Returns:
        The rows, and whether the file needs rewriting: its last line was torn by a crash
        (dropped here) or lacks its newline.

    Raises:
        DataError: A line other than the last is not a JSON object (the file was edited by
            hand); the message names the file and the line.
    """
    path = Path(path)
    if not path.exists():
        return [], False
    lines = path.read_bytes().split(b"\n")
    # A file that ends with "\n" splits into [..., b""]; anything else means the last append
    # did not finish.
    needs_rewrite = lines[-1] != b""
    if not needs_rewrite:
        lines.pop()
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except ValueError as error:
            if number == len(lines):
                needs_rewrite = True
                break
            raise DataError(
                f"{path}, line {number}: not a JSON object ({error}); fix or delete the line, then rerun"
            ) from error
        for key in floats:
            if key in row:
                row[key] = from_json_value(row[key])
        rows.append(row)
    return rows, needs_rewrite


def append_jsonl(path: str | os.PathLike[str], row: Mapping[str, Any], *, sort_keys: bool = False) -> None:
    """Append one row as one fsynced write, so a crash leaves at most a torn last line.

    A torn last line left by an earlier crash is trimmed first, so the new row starts on a
    line of its own.
    """
    path = Path(path)
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            torn = handle.read(1) != b"\n"
        if torn:
            rows, _ = read_jsonl(path)
            rewrite_jsonl(path, rows, sort_keys=sort_keys)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json_line(row, sort_keys=sort_keys))
        handle.flush()
        os.fsync(handle.fileno())


def rewrite_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]], *, sort_keys: bool = False) -> None:
    """Atomically replace ``path`` with ``rows``, one per line."""
    atomic_write_text(path, "".join(json_line(row, sort_keys=sort_keys) for row in rows))


def png_base64(image: Image.Image | Figure | bytes, *, dpi: int = 110, optimize: bool = False) -> str:
    """``image`` as base64 PNG text, for an inline ``data:image/png;base64,...`` URI in a page.

    Args:
        image: A PIL image, a matplotlib figure (drawn at ``dpi``) or PNG file bytes.
        dpi: Resolution of a figure.
        optimize: Let PIL search for a smaller encoding (slower; for many small thumbnails).
    """
    if isinstance(image, bytes):
        data = image
    else:
        buffer = io.BytesIO()
        if hasattr(image, "savefig"):
            image.savefig(buffer, format="png", dpi=dpi)
        else:
            image.save(buffer, format="PNG", optimize=optimize)
        data = buffer.getvalue()
    return base64.b64encode(data).decode("ascii")


@contextmanager
def directory_lock(root: str | os.PathLike[str], error: type[SynthaugError] = SynthaugError) -> Iterator[None]:
    """Hold an exclusive lock on the folder ``root`` (its ``.synthaug.lock`` file) for a block.

    The lock is the operating system's (``flock``; ``msvcrt.locking`` on Windows), held by the
    open file: the system releases it when the process dies, so a killed run (even SIGKILL)
    never leaves a stale lock behind, and there is no pid file to check for liveness.

    Args:
        root: The folder (must exist).
        error: The class of the error raised when another process holds the lock (the
            caller's: a generation run raises ``GenerationError``, a study ``ConfigError``).

    Raises:
        SynthaugError: (of class ``error``) Another process holds the lock.
    """
    root = Path(root)
    handle = open(root / LOCK_NAME, "a+b")  # noqa: SIM115 (closed below)
    try:
        try:
            _lock(handle)
        except OSError as raised:
            raise error(
                f"another synthaug process is writing to {root}; wait for it to finish or stop it"
            ) from raised
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(handle: Any) -> None:
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

else:
    import fcntl

    def _lock(handle: Any) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
