"""The audit folder: files, per-class table, HTML page, resuming, and refusing other audits."""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest

from synthaug.audit import ROW_FIELDS, AuditConfig, audit_dataset
from synthaug.audit.report import render_report
from synthaug.audit.summary import CLASS_COLUMNS
from synthaug.data import ImageDataset
from synthaug.errors import ConfigError, DataError

from helpers.audit_testing import FAST_CONFIG


@pytest.mark.slow
def test_scores_file_has_one_row_per_image_with_every_field(noisy_audit) -> None:
    lines = (noisy_audit.result.out_dir / "scores.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == len(noisy_audit.data)
    assert all(list(row) == list(ROW_FIELDS) for row in rows)
    assert sorted(row["index"] for row in rows) == list(range(len(noisy_audit.data)))
    # In-memory images are named by their index.
    assert all(row["file_name"] == str(row["index"]) for row in rows)
    assert rows == noisy_audit.result.rows


def test_copies_and_leakage_are_flagged_in_the_rows(noisy_audit) -> None:
    by_index = {row["index"]: row for row in noisy_audit.result.rows}
    (original, copy), (near_original, near_copy) = noisy_audit.exact_copy, noisy_audit.near_copy
    assert by_index[copy]["duplicate_of"] == str(original) and by_index[copy]["duplicate_similarity"] == 1.0
    assert by_index[near_copy]["duplicate_of"] == str(near_original)
    leak, test_index = noisy_audit.leak
    assert by_index[leak]["leakage"] and by_index[leak]["test_match"] == f"test[{test_index}]"
    assert [row["index"] for row in noisy_audit.result.rows if row["leakage"]] == [leak]
    assert sum(row["duplicate_of"] is not None for row in noisy_audit.result.rows) == 2
    assert noisy_audit.result.summary["test_leaks"] == 1 and noisy_audit.result.summary["duplicates"] == 2


def test_class_table_estimates_noise_and_diversity(noisy_audit) -> None:
    with (noisy_audit.result.out_dir / "classes.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == CLASS_COLUMNS
    assert [row["class"] for row in table] == noisy_audit.data.classes
    assert sum(int(row["images"]) for row in table) == len(noisy_audit.data)
    # 10 % of the labels were flipped; the confident-learning estimate is in that region.
    rates = [float(row["estimated_noise_rate"]) for row in table]
    assert 0.03 <= np.mean(rates) <= 0.2, rates
    assert all(float(row["diversity"]) > 0 and float(row["diversity_ratio"]) > 0 for row in table)
    assert sum(int(row["test_leaks"]) for row in table) == 1


def test_audit_json_records_settings_seed_version_and_data(noisy_audit) -> None:
    audit = json.loads((noisy_audit.result.out_dir / "audit.json").read_text())
    assert audit["status"] == "complete" and audit["seed"] == FAST_CONFIG.seed
    assert audit["identity"]["config"] == FAST_CONFIG.to_dict()
    assert audit["identity"]["data"]["fingerprint"] == noisy_audit.data.fingerprint()
    assert audit["score_components"] == ["cv_label_error", "reference_label_error"]
    assert audit["synthaug_version"] and audit["diversity_features"] == "penultimate layer of the reference model"


def test_html_page_is_self_contained_and_shows_the_worst_images(noisy_audit) -> None:
    html = (noisy_audit.result.out_dir / "audit.html").read_text()
    assert "<script" not in html and not re.search(r"""(src|href)=["']https?:""", html)
    shown = html.count("data:image/png;base64,")
    # report_per_class worst images of each class, plus the leak and the test image it copies.
    assert shown == FAST_CONFIG.report_per_class * len(noisy_audit.data.classes) + 2
    assert f"#1 {noisy_audit.result.rows[0]['file_name']}" in html


def test_html_escapes_names_from_the_data(noisy_audit, tmp_path) -> None:
    hostile = ["<script>alert(1)</script>", "b&b", "c"]
    data = ImageDataset.from_arrays(noisy_audit.data.as_array(), noisy_audit.data.targets, hostile, name="<i>x</i>")
    rows = [dict(row, label=hostile[noisy_audit.data.targets[row["index"]]], _test_index=None)
            for row in noisy_audit.result.rows]
    page = render_report(tmp_path / "audit.html", data, rows, [], CLASS_COLUMNS,
                         {"data_name": data.name, "reference_name": None, "test_name": None,
                          "score_components": ["cv_label_error"], "version": "0", "seed": 0})
    html = page.read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<i>x</i>" not in html and "b&amp;b" in html


@pytest.mark.slow
def test_rerun_resumes_from_saved_predictions_with_the_same_numbers(noisy_audit, tmp_path) -> None:
    out = tmp_path / "audit"
    shutil.copytree(noisy_audit.result.out_dir, out)
    (out / "predictions" / "cv-fold-1.npz").unlink()  # as if interrupted during fold 2
    messages: list[str] = []
    result = audit_dataset(noisy_audit.data, out, reference=noisy_audit.reference, test=noisy_audit.test,
                           config=FAST_CONFIG, log=messages.append)
    training = [message for message in messages if "training" in message]
    assert len(training) == 1 and training[0].startswith("cross-validation fold 2/3")
    assert result.rows == noisy_audit.result.rows  # same seed, same numbers


def test_an_audit_of_other_settings_is_not_overwritten(noisy_audit, tmp_path) -> None:
    out = tmp_path / "audit"
    shutil.copytree(noisy_audit.result.out_dir, out)
    before = (out / "scores.jsonl").read_bytes()
    with pytest.raises(ConfigError, match="other data or with other settings"):
        audit_dataset(noisy_audit.data, out, config=AuditConfig(folds=4))
    assert (out / "scores.jsonl").read_bytes() == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an audit folder"):
        audit_dataset(noisy_audit.data, tmp_path / "other")


def test_too_small_classes_and_unknown_reference_classes_are_clear_errors(noisy_audit, tmp_path) -> None:
    targets = noisy_audit.data.targets
    few = noisy_audit.data.subset(np.concatenate([np.flatnonzero(targets == 0), np.flatnonzero(targets == 1)[:2]]))
    with pytest.raises(DataError, match="fewer images than the 3 cross-validation folds"):
        audit_dataset(few, tmp_path / "few", config=FAST_CONFIG)
    other = ImageDataset.from_arrays(noisy_audit.reference.as_array(), noisy_audit.reference.targets,
                                     ["horizontal", "vertical", "round"], name="other")
    with pytest.raises(DataError, match=r"classes \[.diagonal.\] are not classes of the reference other"):
        audit_dataset(noisy_audit.data, tmp_path / "ref", reference=other,
                      config=AuditConfig(folds=3, method="deterministic", epochs=1))


def test_a_score_that_needs_a_reference_is_refused_before_any_training(noisy_audit, tmp_path) -> None:
    config = AuditConfig(folds=3, method="deterministic", score_components=("reference_label_error",))
    with pytest.raises(ConfigError, match="reference_label_error needs --reference"):
        audit_dataset(noisy_audit.data, tmp_path / "audit", config=config)
    assert not (tmp_path / "audit").exists()
