"""The run folder's append-only results log (``RUN_DIR/results.jsonl``).

One JSON object per finished unit (regime x size x backbone x method x seed). A row is
appended and fsynced only after its model and predictions are safely stored, so the log
never claims work that is not on disk; a line cut short by a crash is dropped on the next
read and rewritten when the unit runs again.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["append_row", "read_rows", "to_json_value"]


def to_json_value(value: Any) -> Any:
    """``value`` with numpy scalars made Python numbers and non-finite floats made strings
    (``"nan"``, ``"inf"``), so that the log is strict JSON any tool can read."""
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
    """Inverse of :func:`to_json_value` for the non-finite floats."""
    if isinstance(value, dict):
        return {key: from_json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_json_value(item) for item in value]
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return value


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete row of a results log; a missing file is an empty log.

    A final line without its newline (a write cut short) is ignored and trimmed from the file
    so that the next append starts on a clean line.
    """
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    complete, _, partial = raw.rpartition(b"\n")
    if partial:
        with path.open("r+b") as handle:
            handle.truncate(len(complete) + 1 if complete else 0)
    lines = complete.decode("utf-8").splitlines() if complete else []
    return [from_json_value(json.loads(line)) for line in lines if line.strip()]


def append_row(path: str | os.PathLike[str], row: Mapping[str, Any]) -> None:
    """Append one row and fsync it."""
    line = json.dumps(to_json_value(row), sort_keys=True) + "\n"
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def write_rows(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Write a whole JSON-lines file atomically (used for derived tables, not the log)."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.partial-{os.getpid()}")
    with staging.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(to_json_value(row), sort_keys=True) + "\n")
    os.replace(staging, path)
