"""filter_dataset: drops the marked images into a new folder and never touches the input."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthaug.audit import audit_dataset, drop_reasons, filter_dataset, parse_drop_top
from synthaug.data import load_dataset
from synthaug.errors import ConfigError

from helpers.audit_testing import FAST_CONFIG, PATTERN_CLASSES, make_pattern_images, tree_digest


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_filter_of_in_memory_images_drops_the_top_and_the_leak(noisy_audit, tmp_path) -> None:
    result = filter_dataset(noisy_audit.data, noisy_audit.result.out_dir, tmp_path / "clean", drop_top=12)
    top = {row["index"] for row in noisy_audit.result.rows[:12]}
    leak = noisy_audit.leak[0]
    expected_dropped = top | {leak}
    assert {int(row["file_name"]) for row in result.dropped} == expected_dropped
    assert result.kept == len(noisy_audit.data) - len(expected_dropped)
    leak_row = next(row for row in result.dropped if int(row["file_name"]) == leak)
    assert any(reason.startswith("leakage: copy of test image test[") for reason in leak_row["reasons"])
    assert all(any(reason.startswith("top 12 score") for reason in row["reasons"])
               for row in result.dropped if int(row["file_name"]) in top)
    assert _jsonl(tmp_path / "clean" / "dropped.jsonl") == result.dropped

    clean = load_dataset(tmp_path / "clean")
    metadata = _jsonl(tmp_path / "clean" / "metadata.jsonl")
    kept = [row["index"] for row in metadata]  # in-memory records keep their source index
    assert sorted(set(range(len(noisy_audit.data))) - set(kept)) == sorted(expected_dropped)
    # Every kept image was written as a PNG with its pixels and label unchanged (the folder
    # loads sorted by file name).
    metadata.sort(key=lambda row: row["file_name"])
    for row, image, label in zip(metadata, clean.as_array(), clean.targets, strict=True):
        np.testing.assert_array_equal(image, noisy_audit.data.as_array()[row["index"]])
        assert clean.classes[label] == noisy_audit.data.classes[noisy_audit.data.targets[row["index"]]]
    summary = json.loads((tmp_path / "clean" / "filter.json").read_text())
    assert summary["dropped_by_reason"] == {"top score": 12, "leakage": 1}
    assert summary["source"]["fingerprint"] == noisy_audit.data.fingerprint()


def test_filter_refuses_to_overwrite_and_other_data(noisy_audit, tmp_path) -> None:
    out = tmp_path / "clean"
    filter_dataset(noisy_audit.data, noisy_audit.result.out_dir, out, threshold=0.9)
    before = tree_digest(out)
    with pytest.raises(ConfigError, match="already exists"):
        filter_dataset(noisy_audit.data, noisy_audit.result.out_dir, out, drop_top=0.5)
    assert tree_digest(out) == before
    with pytest.raises(ConfigError, match="not these 90 images"):
        filter_dataset(noisy_audit.reference, noisy_audit.result.out_dir, tmp_path / "other", drop_top=3)
    with pytest.raises(ConfigError, match="not an audit folder"):
        filter_dataset(noisy_audit.data, tmp_path / "nothing", tmp_path / "other", drop_top=3)
    assert not (tmp_path / "other").exists()
    assert [path.name for path in tmp_path.iterdir()] == ["clean"]  # no partial folder left behind


def test_drop_options(noisy_audit) -> None:
    rows = noisy_audit.result.rows
    assert len(drop_reasons(rows, drop_top=0.25, drop_leakage=False)) == 30
    assert set(drop_reasons(rows, threshold=rows[4]["score"], drop_leakage=False)) == {
        row["index"] for row in rows if row["score"] >= rows[4]["score"]}
    issues = drop_reasons(rows, drop_label_issues=True, drop_leakage=False)
    assert set(issues) == {row["index"] for row in rows if row["label_issue"]}
    duplicates = drop_reasons(rows, drop_duplicates=True, drop_leakage=False)
    assert set(duplicates) == {noisy_audit.exact_copy[1], noisy_audit.near_copy[1]}
    with pytest.raises(ConfigError, match="not both"):
        drop_reasons(rows, drop_top=3, threshold=0.5)
    with pytest.raises(ConfigError, match="say what to drop"):
        drop_reasons(rows)
    assert parse_drop_top("10%") == pytest.approx(0.1) and parse_drop_top("50") == 50


def test_drop_top_per_class_takes_the_same_share_of_every_class(noisy_audit) -> None:
    rows = noisy_audit.result.rows
    labels = sorted({row["label"] for row in rows})
    per_class = drop_reasons(rows, drop_top=0.25, drop_leakage=False, per_class=True)
    for label in labels:
        members = [row for row in rows if row["label"] == label]
        dropped = [row for row in members if row["index"] in per_class]
        assert len(dropped) == round(0.25 * len(members))
        # ... and those are the class's highest scores.
        assert min(row["score"] for row in dropped) >= max(
            row["score"] for row in members if row["index"] not in per_class)
        assert all(f"of class {label}" in per_class[row["index"]][0] for row in dropped)
    counts = drop_reasons(rows, drop_top=2, drop_leakage=False, per_class=True)
    label_of = {row["index"]: row["label"] for row in rows}
    assert sorted(Counter(label_of[index] for index in counts).values()) == [2] * len(labels)
    with pytest.raises(ConfigError, match="per_class applies to drop_top"):
        drop_reasons(rows, threshold=0.5, per_class=True)
    for bad in ("abc", "0", "100%", "-5"):
        with pytest.raises(ConfigError, match="--drop-top"):
            parse_drop_top(bad)


@pytest.mark.slow
def test_audit_and_filter_a_generated_folder_keep_provenance_and_leave_it_untouched(tmp_path) -> None:
    # A generated-style folder: <class-slug>/<id>.png + metadata.jsonl with provenance fields.
    images, labels = make_pattern_images(20, seed=3)
    labels[[0, 7, 20, 41]] = (labels[[0, 7, 20, 41]] + 1) % 3  # four wrong labels
    images[50] = images[10]  # and one exact duplicate (same class)
    root = tmp_path / "generated"
    rows = []
    for index, (image, label) in enumerate(zip(images, labels)):
        file_name = f"{PATTERN_CLASSES[label]}/{index:03d}.png"
        (root / PATTERN_CLASSES[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / file_name)
        rows.append({"file_name": file_name, "label": PATTERN_CLASSES[label],
                     "prompt": f"a {PATTERN_CLASSES[label]} bar", "seed": index, "backend": "test"})
    (root / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    before = tree_digest(root)

    data = load_dataset(root)
    audit = audit_dataset(data, tmp_path / "audit", config=FAST_CONFIG)
    assert audit.rows[0]["file_name"].endswith(".png")
    # The copy that loads second (images load sorted by file name) is the duplicate.
    duplicate = max(rows[10]["file_name"], rows[50]["file_name"])
    assert {row["file_name"] for row in audit.rows if row["duplicate_of"]} == {duplicate}
    result = filter_dataset(data, tmp_path / "audit", tmp_path / "clean", drop_top=4, drop_duplicates=True)

    assert tree_digest(root) == before  # the input is untouched
    clean_rows = _jsonl(tmp_path / "clean" / "metadata.jsonl")
    dropped = {row["file_name"] for row in result.dropped}
    assert {row["file_name"] for row in clean_rows} == {row["file_name"] for row in rows} - dropped
    assert duplicate in dropped and len(dropped) <= 5
    by_name = {row["file_name"]: row for row in rows}
    for row in clean_rows:
        assert {key: row[key] for key in by_name[row["file_name"]]} == by_name[row["file_name"]]  # provenance kept
        kept, original = tmp_path / "clean" / row["file_name"], root / row["file_name"]
        assert os.path.samefile(kept, original)  # a hard link, not a copy
    assert len(load_dataset(tmp_path / "clean")) == len(rows) - len(dropped)
