"""Merging shard manifests: only rows whose file matches, once per file name, once per refusal,
and merging again changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from synthaug.fileio import sha256_bytes
from synthaug.generate.shards import MANIFESTS_DIR, committed_in_shard, merge_shards, shard_paths


def image_row(root: Path, name: str, data: bytes, sha256: str | None = None) -> dict:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(data)
    return {"file_name": name, "label": name.split("/")[0], "sha256": sha256 or sha256_bytes(data), "cost_usd": 0.02}


def write_lines(path: Path, rows: list[dict], torn: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + torn)


def test_merge_keeps_matching_rows_once_and_is_idempotent(tmp_path):
    good = image_row(tmp_path, "cat/000000.png", b"cat0")
    again = image_row(tmp_path, "cat/000000.png", b"cat0")  # the same slot from a retried shard
    other = image_row(tmp_path, "dog/000001.png", b"dog1")
    wrong = image_row(tmp_path, "dog/000002.png", b"dog2", sha256="0" * 64)  # overwritten later
    first, first_refusals = shard_paths(tmp_path, "host-1", "r0-00000")
    second, _ = shard_paths(tmp_path, "host-2", "r0-00000")
    write_lines(first, [good, wrong], torn='{"file_name": "cat/0000')  # killed mid-append
    write_lines(second, [again, other])
    refusal = {"label": "dog", "index": 3, "attempt": 0, "prompt": "p", "cost_usd": 0.0}
    write_lines(first_refusals, [refusal, refusal])

    files, refusals = committed_in_shard(tmp_path, "r0-00000")
    assert files == {"cat/000000.png", "dog/000001.png"} and refusals == {("dog", 3, 0)}

    committed: set[str] = set()
    refused: set[tuple] = set()
    merged = merge_shards(tmp_path, committed, refused)
    assert [row["file_name"] for row in merged.rows] == ["cat/000000.png", "dog/000001.png"]
    assert len(merged.rejections) == 1 and committed == {"cat/000000.png", "dog/000001.png"}
    manifest = (tmp_path / "metadata.jsonl").read_text().splitlines()
    assert len(manifest) == 2 and len((tmp_path / "rejected.jsonl").read_text().splitlines()) == 1
    assert not list((tmp_path / MANIFESTS_DIR).iterdir())  # merged files are removed

    # A crash after appending but before deleting leaves the shard behind: merging it again adds nothing.
    write_lines(first, [good])
    write_lines(first_refusals, [refusal])
    merged = merge_shards(tmp_path, committed, refused)
    assert merged.rows == [] and merged.rejections == []
    assert (tmp_path / "metadata.jsonl").read_text().splitlines() == manifest
