"""Corrupted test sets (synthaug.data.shift) and their dataset specs."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from synthaug.data import ImageDataset, load_dataset
from synthaug.data.shift import CORRUPTIONS, SEVERITIES, corrupt, parse_shift_spec
from synthaug.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHAUG_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def squares() -> ImageDataset:
    """Twenty 28x28 images: a bright 8x8 square at a random place on a dark noisy background."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 30, size=(20, 28, 28)).astype(np.uint8)
    for image in images:
        top, left = rng.integers(4, 16, size=2)
        image[top : top + 8, left : left + 8] = 220
    return ImageDataset.from_arrays(images, np.arange(20) % 2, ["a", "b"], name="squares")


def _pixels(dataset: ImageDataset) -> np.ndarray:
    return dataset.as_array().astype(np.float64)


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_every_corruption_changes_the_images_more_at_higher_severity(squares, corruption):
    clean = _pixels(squares)
    distances = [np.abs(_pixels(corrupt(squares, corruption, s, cache=False)) - clean).mean() for s in (1, 3, 5)]
    assert 0 < distances[0] < distances[1] < distances[2]


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupted_set_keeps_labels_classes_and_shape(squares, corruption):
    shifted = corrupt(squares, corruption, 2, cache=False)
    assert shifted.as_array().shape == squares.as_array().shape
    assert list(shifted.targets) == list(squares.targets)
    assert shifted.classes == squares.classes
    assert shifted.name == f"squares | {corruption}:2"


def test_the_same_seed_gives_the_same_images_and_another_seed_others(squares):
    first = corrupt(squares, "gaussian_noise", 3, seed=0, cache=False)
    again = corrupt(squares, "gaussian_noise", 3, seed=0, cache=False)
    other = corrupt(squares, "gaussian_noise", 3, seed=1, cache=False)
    assert first.fingerprint() == again.fingerprint()
    assert first.fingerprint() != other.fingerprint()


def test_corrupted_pixels_are_cached_on_disk_and_read_back(squares, tmp_path):
    built = corrupt(squares, "rotation", 4)
    files = list((tmp_path / "cache" / "shift").glob("*.npy"))
    assert len(files) == 1
    # A changed cache file is what the next call returns: it was read, not recomputed.
    np.save(files[0], np.zeros((20, 28, 28, 1), dtype=np.uint8))
    assert corrupt(squares, "rotation", 4).as_array().max() == 0
    assert built.as_array().max() > 0


def test_contrast_at_severity_5_keeps_5_percent_of_the_spread(squares):
    clean = _pixels(squares)
    shifted = _pixels(corrupt(squares, "contrast", 5, cache=False))
    assert shifted.std() == pytest.approx(0.05 * clean.std(), rel=0.1)


def test_translation_moves_the_bright_square(squares):
    clean, shifted = _pixels(squares), _pixels(corrupt(squares, "translation", 5, cache=False))
    centre = lambda image: np.argwhere(image[..., 0] > 150).mean(axis=0)  # noqa: E731
    moved = [np.linalg.norm(centre(a) - centre(b)) for a, b in zip(clean, shifted)]
    assert np.median(moved) == pytest.approx(10, abs=1.5)


def test_specs_load_corrupted_builtin_and_any_dataset():
    digits = load_dataset("digits[:12]")
    shifted = load_dataset("shift:blur:2:digits[:12]")
    assert len(shifted) == 12 and shifted.name == "digits[:12] | blur:2"
    assert not np.array_equal(shifted.as_array(), digits.as_array())
    assert parse_shift_spec("fashion-mnist-c:test:contrast:5") == ("contrast", 5, "fashion-mnist:test")
    assert parse_shift_spec("fashion-mnist:test") is None


@pytest.mark.parametrize(
    "spec, words",
    [
        ("fashion-mnist-c:test", "fashion-mnist-c:<split>:<corruption>:<severity>"),
        ("shift:fog:3:digits", "unknown corruption 'fog'"),
        ("shift:blur:6:digits", "severity must be an integer from 1 to 5"),
        ("shift:blur:three:digits", "severity must be an integer from 1 to 5"),
        ("shift:blur:3", "shift:<corruption>:<severity>:<dataset>"),
    ],
)
def test_a_malformed_spec_is_one_line_naming_the_fix(spec, words):
    with pytest.raises(DataError, match="^" + spec.replace("[", r"\[")) as raised:
        load_dataset(spec)
    assert words in str(raised.value) and "\n" not in str(raised.value)


def test_corrupt_checks_its_arguments(squares):
    with pytest.raises(ConfigError, match="unknown corruption"):
        corrupt(squares, "snow", 1)
    with pytest.raises(ConfigError, match="severity"):
        corrupt(squares, "blur", 0)


def test_the_study_config_lists_the_same_corruptions():
    from synthaug.study.config import Corruption

    assert list(typing.get_args(Corruption)) == list(CORRUPTIONS)
    assert SEVERITIES == (1, 2, 3, 4, 5)
