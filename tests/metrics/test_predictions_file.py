"""The predictions .npz: round trip, no pickle, and one-line errors for bad files."""

import numpy as np
import pytest
import torch

from synthaug.errors import DataError
from synthaug.metrics import load_predictions, save_predictions


def test_round_trip_keeps_arrays_and_class_names(tmp_path, predictions):
    probs, labels = predictions
    path = save_predictions(tmp_path / "sub" / "preds.npz", probs, labels, classes=["a", "b", "c", "d", "e"])
    loaded_probs, loaded_labels, classes = load_predictions(path)
    np.testing.assert_array_equal(loaded_probs, probs)
    assert loaded_probs.dtype == np.float32
    np.testing.assert_array_equal(loaded_labels, labels)
    assert classes == ["a", "b", "c", "d", "e"]
    with np.load(path, allow_pickle=False) as archive:
        assert archive["classes"].dtype.kind == "U"


def test_two_dimensional_torch_input_is_stored_as_one_sample(tmp_path, predictions):
    probs, labels = predictions
    path = save_predictions(tmp_path / "preds", torch.from_numpy(probs[0]), torch.from_numpy(labels))
    assert path == tmp_path / "preds"  # written exactly where asked, no suffix added
    loaded = load_predictions(path)
    assert loaded.probs.shape == (1,) + probs.shape[1:]
    assert loaded.classes is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds"]


def test_wrong_number_of_class_names_is_refused(tmp_path, predictions):
    probs, labels = predictions
    with pytest.raises(DataError, match="expected 5 class names"):
        save_predictions(tmp_path / "preds.npz", probs, labels, classes=["a", "b"])
    assert not list(tmp_path.iterdir())


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


def _truncate(path):
    path.write_bytes(path.read_bytes()[:200])
    return path


def _write_npy(path, array):
    with open(path, "wb") as file:
        np.save(file, array)
    return path


def _write_npz(path, **arrays):
    with open(path, "wb") as file:
        np.savez(file, **arrays)
    return path


@pytest.mark.parametrize(
    ("make_file", "message"),
    [
        (lambda path: path, "no such predictions file"),
        (lambda path: _write_bytes(path, b"probs,labels\n0.5,1\n"), "not a .npz archive"),
        (lambda path: _write_bytes(path, b""), "not a .npz archive"),
        (lambda path: _write_npy(path, np.ones(3)), "single .npy array"),
        (lambda path: _truncate(_write_npz(path, probs=np.full((50, 2), 0.5), labels=np.zeros(50, int))), "not a .npz"),
        (lambda path: _write_npz(path, probs=np.full((4, 2), 0.5)), "missing array(s) labels"),
        (
            lambda path: _write_npz(path, probs=np.full((2, 2), 0.5), labels=np.array([0, {"a": 1}], dtype=object)),
            "not a readable .npz",
        ),
        (lambda path: _write_npz(path, probs=np.full((2, 2), 2.0), labels=np.array([0, 1])), "must lie in [0, 1]"),
        (lambda path: _write_npz(path, probs=np.full((2, 2), 0.5), labels=np.array([0, 5])), "labels: class indices"),
        (
            lambda path: _write_npz(
                path, probs=np.full((2, 2), 0.5), labels=np.array([0, 1]), classes=np.array([1, 2])
            ),
            "class names must be strings",
        ),
    ],
    ids=[
        "missing", "text", "empty", "npy", "truncated", "no-labels",
        "pickled-object", "not-probabilities", "bad-label", "int-classes",
    ],
)
def test_bad_files_are_one_line_data_errors_naming_the_file(tmp_path, make_file, message):
    path = make_file(tmp_path / "preds.npz")
    with pytest.raises(DataError) as caught:
        load_predictions(path)
    text = str(caught.value)
    assert message in text and str(path) in text and "\n" not in text
