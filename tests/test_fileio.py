"""The shared durable-write, hash and JSON-lines helpers."""

from __future__ import annotations

import base64
import hashlib
import io
import math

import pytest

from synthaug.errors import DataError
from synthaug.fileio import (
    append_jsonl,
    atomic_write_bytes,
    atomic_write_text,
    png_base64,
    read_jsonl,
    rewrite_jsonl,
    sha256_bytes,
    sha256_file,
    write_atomically,
)
from synthaug.progress import ProgressEvent, report


def test_atomic_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")
    atomic_write_bytes(path, b"new content")
    assert path.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "kept")

    def fail(handle):
        handle.write(b"half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        write_atomically(path, fail)
    assert path.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_hashes_match_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    path = tmp_path / "blob"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == expected
    assert sha256_bytes(data) == expected


def test_jsonl_round_trip_with_non_finite_floats(tmp_path):
    path = tmp_path / "rows.jsonl"
    append_jsonl(path, {"a": 1, "metrics": {"x": float("nan")}, "label": "nan"})
    append_jsonl(path, {"a": 2, "metrics": {"x": float("inf"), "y": -math.inf}, "label": "T-shirt/top é"})
    rows, needs_rewrite = read_jsonl(path, floats=("metrics",))
    assert not needs_rewrite
    assert [row["a"] for row in rows] == [1, 2]
    assert math.isnan(rows[0]["metrics"]["x"]) and rows[1]["metrics"] == {"x": math.inf, "y": -math.inf}
    # Only the fields named as numbers are converted: a label that reads "nan" stays a label.
    assert rows[0]["label"] == "nan" and rows[1]["label"] == "T-shirt/top é"
    assert read_jsonl(path)[0][0] == {"a": 1, "metrics": {"x": "nan"}, "label": "nan"}


def test_png_base64_encodes_images_figures_and_bytes_alike(tmp_path):
    from matplotlib.figure import Figure
    from PIL import Image

    image = Image.new("L", (3, 2), color=7)
    decoded = Image.open(io.BytesIO(base64.b64decode(png_base64(image))))
    assert decoded.size == (3, 2) and decoded.getpixel((2, 1)) == 7
    path = tmp_path / "a.png"
    image.save(path)
    assert base64.b64decode(png_base64(path.read_bytes())) == path.read_bytes()
    figure = Figure(figsize=(1, 1))
    assert Image.open(io.BytesIO(base64.b64decode(png_base64(figure, dpi=20)))).size == (20, 20)


def test_torn_last_line_is_dropped_and_trimmed_before_the_next_append(tmp_path):
    path = tmp_path / "rows.jsonl"
    rewrite_jsonl(path, [{"a": 1}, {"a": 2}])
    with open(path, "ab") as handle:
        handle.write(b'{"a": 3, "tor')  # a crash mid-append
    rows, needs_rewrite = read_jsonl(path)
    assert [row["a"] for row in rows] == [1, 2] and needs_rewrite
    append_jsonl(path, {"a": 4})
    rows, needs_rewrite = read_jsonl(path)
    assert [row["a"] for row in rows] == [1, 2, 4] and not needs_rewrite


def test_a_bad_line_in_the_middle_names_the_file_and_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\nnot json\n{"a": 3}\n')
    with pytest.raises(DataError, match=r"rows.jsonl, line 2: not a JSON object .*; fix or delete the line, then"):
        read_jsonl(path)


def test_report_calls_the_callback_only_when_there_is_one():
    events: list[ProgressEvent] = []
    report(None, "study", 1, 3)
    report(events.append, "study", 2, 3, item="real/n=10", unit="units")
    assert events == [ProgressEvent("study", 2, 3, item="real/n=10", unit="units")]
