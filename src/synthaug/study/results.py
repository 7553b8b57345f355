"""The run folder's append-only results log (``RUN_DIR/results.jsonl``).

One :class:`~synthaug.study.records.UnitResult` per line, for each finished unit (regime x
size x backbone x method x seed). A row is appended and fsynced only after its model and
predictions are safely stored, so the log never claims work that is not on disk; a line cut
short by a crash is dropped on the next read and trimmed before the next append
(:mod:`synthaug.fileio`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from synthaug.fileio import append_jsonl, read_jsonl
from synthaug.study.records import UnitResult
from synthaug.study.run_folder import RESULTS_FILE

__all__ = ["RESULTS_FILE", "append_result", "append_row", "read_results", "read_rows"]



def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete row of a results log as plain data; a missing file is an empty log.

    Raises:
        DataError: A line other than the last is not JSON (the log was edited by hand).
    """
    return read_jsonl(path, floats=("metrics",))[0]


def append_row(path: str | os.PathLike[str], row: Mapping[str, Any]) -> None:
    """Append one row (keys sorted, as the log has always been written) and fsync it."""
    append_jsonl(path, row, sort_keys=True)


def read_results(path: str | os.PathLike[str]) -> list[UnitResult]:
    """Every finished unit in a results log, written by this or an earlier synthaug."""
    return [UnitResult.from_dict(row) for row in read_rows(path)]


def append_result(path: str | os.PathLike[str], result: UnitResult) -> None:
    """Append one finished unit to a results log."""
    append_row(path, result.to_dict())
