"""audit_weights: per-example training weights from an audit, matched by file_name, that
every method's training honours."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthaug.audit import DEFAULT_WEIGHT_FLOOR, audit_dataset, audit_weights, read_scores
from synthaug.data import ImageDataset, load_dataset
from synthaug.errors import ConfigError, DataError
from synthaug.methods import METHODS, make_method

from helpers.audit_testing import FAST_CONFIG, PATTERN_CLASSES, make_pattern_images

# A CNN small enough that every method fits the 16x16 pattern images in about a second.
TINY = {"backbone_options": {"image_size": 16, "channels": [8, 16], "hidden": 32}, "epochs": 8, "batch_size": 32,
        "learning_rate": 3e-3, "patience": None}
FAST_OPTIONS = {"ensemble": {"num_members": 2}, "mc-dropout": {"num_samples": 4}, "temperature": {"max_iter": 20}}


def test_weight_is_the_out_of_sample_probability_of_the_label(noisy_audit) -> None:
    weights = audit_weights(noisy_audit.data, noisy_audit.result.out_dir)
    rows = sorted(noisy_audit.result.rows, key=lambda row: row["index"])
    assert weights.shape == (len(noisy_audit.data),) and weights.dtype == np.float64
    leak = noisy_audit.leak[0]
    expected = np.array([max(DEFAULT_WEIGHT_FLOOR, 1.0 - row["cv_label_error"]) for row in rows])
    expected[leak] = 0.0  # a copy of a test image must not be trained on
    np.testing.assert_allclose(weights, expected)
    # The flipped labels are the ones the cross-validated models do not believe.
    clean = np.setdiff1d(np.arange(len(weights)), [*noisy_audit.flipped, leak])
    assert weights[noisy_audit.flipped].mean() < 0.3 < 0.6 < weights[clean].mean()

    floored = audit_weights(noisy_audit.data, noisy_audit.result.out_dir, floor=0.5)
    assert floored.min() == 0.0 and np.sort(floored)[1] == 0.5
    with pytest.raises(ConfigError, match="floor must be in"):
        audit_weights(noisy_audit.data, noisy_audit.result.out_dir, floor=1.5)


@pytest.fixture(scope="module")
def audited_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A folder of 60 pattern PNGs (classes by sub-folder) and its audit."""
    root = tmp_path_factory.mktemp("weights") / "patterns"
    images, labels = make_pattern_images(20, seed=3, size=16)
    for index, (image, label) in enumerate(zip(images, labels)):
        (root / PATTERN_CLASSES[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / PATTERN_CLASSES[label] / f"{index:03d}.png")
    audit = root.parent / "audit"
    audit_dataset(load_dataset(root), audit, config=FAST_CONFIG)
    return root, audit


@pytest.mark.slow
def test_weights_follow_the_images_by_file_name(audited_folder) -> None:
    root, audit = audited_folder
    data = load_dataset(root)
    weights = audit_weights(data, audit)
    rows = read_scores(audit).rows
    np.testing.assert_allclose(weights, [max(DEFAULT_WEIGHT_FLOOR, 1 - rows[record["file_name"]]["cv_label_error"])
                                         for record in data.records])
    # A reordered subset of the audited images gets the same image's weight.
    picked = np.array([7, 2, 40, 13])
    np.testing.assert_array_equal(audit_weights(data.subset(picked), audit), weights[picked])
    # A weighted dataset carries the weights into training (and into its fingerprint).
    weighted = data.with_sample_weights(weights)
    np.testing.assert_array_equal(weighted.sample_weights, weights)
    assert weighted.fingerprint() != data.fingerprint()


def test_an_audit_that_does_not_cover_the_data_is_one_clear_error(audited_folder, tmp_path, noisy_audit) -> None:
    root, audit = audited_folder
    extra = tmp_path / "extra"
    for path in root.rglob("*.png"):
        (extra / path.parent.name).mkdir(parents=True, exist_ok=True)
        (extra / path.parent.name / path.name).write_bytes(path.read_bytes())
    Image.fromarray(make_pattern_images(1, seed=9, size=16)[0][0]).save(extra / "horizontal" / "new.png")
    with pytest.raises(DataError) as caught:
        audit_weights(load_dataset(extra), audit)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{audit / 'scores.jsonl'} has no row for 1 of the 61 images" in message
    assert "'horizontal/new.png'" in message and "synthaug audit" in message

    (extra / "horizontal" / "new.png").unlink()
    # The same files, one of them relabelled in a metadata.jsonl.
    rows = [{"file_name": row["file_name"], "label": row["label"]} for row in read_scores(audit).rows.values()]
    rows[0]["label"] = next(name for name in PATTERN_CLASSES if name != rows[0]["label"])
    (extra / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    relabelled = f"'{rows[0]['file_name']}' is labelled .* in the audit but '{rows[0]['label']}'"
    with pytest.raises(DataError, match=relabelled):
        audit_weights(load_dataset(extra), audit)
    # In-memory images are named by position: only the audited dataset itself can be matched.
    with pytest.raises(DataError, match="no file_name to match"):
        audit_weights(noisy_audit.data.subset([1, 0]), noisy_audit.result.out_dir)
    with pytest.raises(ConfigError, match="not an audit folder"):
        audit_weights(load_dataset(root), tmp_path)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "audit.json").write_text(json.dumps({"status": "running"}))
    (unfinished / "scores.jsonl").write_text("")
    with pytest.raises(ConfigError, match="did not finish"):
        audit_weights(load_dataset(root), unfinished)


def _probability_of_given_label(method, data: ImageDataset, indices: np.ndarray) -> float:
    probs = method.predict_proba(data.subset(indices)).mean(axis=0)
    return float(probs[np.arange(len(indices)), data.targets[indices]].mean())


@pytest.mark.slow
def test_audit_weights_keep_the_model_from_learning_the_flipped_labels(noisy_audit) -> None:
    data = noisy_audit.data
    weights = audit_weights(data, noisy_audit.result.out_dir)
    options = {**TINY, "epochs": 15, "seed": 0}
    plain = make_method("deterministic", **options).fit(data, noisy_audit.reference)
    weighted = make_method("deterministic", **options).fit(data.with_sample_weights(weights), noisy_audit.reference)
    flipped = noisy_audit.flipped
    # Trained on the noisy labels, the plain model believes the wrong labels more.
    believed = _probability_of_given_label(weighted, data, flipped)
    assert believed < _probability_of_given_label(plain, data, flipped) - 0.05


@pytest.mark.parametrize("key", METHODS.keys())
def test_every_method_honours_per_example_weights(key: str, make_pattern_dataset) -> None:
    train, test = make_pattern_dataset(20, seed=0, size=16), make_pattern_dataset(10, seed=1, size=16)
    # The images of class 0 count a thousandth of the others: the model should barely learn it.
    weights = np.where(train.targets == 0, 1e-3, 1.0)
    options = {**TINY, **FAST_OPTIONS.get(key, {}), "seed": 0}
    plain = make_method(key, **options).fit(train)
    weighted = make_method(key, **options).fit(train.with_sample_weights(weights))
    class_zero = np.flatnonzero(test.targets == 0)
    learned = _probability_of_given_label(weighted, test, class_zero)
    assert learned < _probability_of_given_label(plain, test, class_zero) - 0.2
