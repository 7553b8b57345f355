"""scikit-learn digits as an OOD set, load_dataset's spec resolution, and the cache folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synthaug.data import cache_dir, cache_root, describe_builtin_datasets, load_dataset
from synthaug.errors import DataError


def test_digits_are_28x28_grayscale():
    digits = load_dataset("digits")
    assert digits.classes == [str(d) for d in range(10)]
    pixels = digits.as_array()
    assert pixels.shape == (1797, 28, 28, 1) and pixels.dtype == np.uint8
    assert pixels.max() == 255 and np.median(pixels) < 50  # bright strokes on a dark background
    assert load_dataset("digits[:100]").fingerprint() == load_dataset("digits").subset(slice(0, 100)).fingerprint()


def test_builtin_listing_names_every_dataset():
    status = {s.name: s for s in describe_builtin_datasets()}
    assert set(status) == {"digits", "fashion-mnist:train", "fashion-mnist:test"}
    assert status["fashion-mnist:train"].size == 60_000 and status["digits"].size == 1797
    assert status["digits"].location.startswith("bundled with scikit-learn")


def test_a_path_is_always_a_folder(tmp_path, tiny_image_folder, monkeypatch):
    monkeypatch.chdir(tiny_image_folder.parent)
    Path("digits").symlink_to(tiny_image_folder)
    assert load_dataset(Path("digits")).classes == ["diagonal", "horizontal", "vertical"]
    assert load_dataset("./digits").classes == ["diagonal", "horizontal", "vertical"]
    assert load_dataset("digits").classes[0] == "0"


def test_unknown_spec_lists_the_builtins(tmp_path):
    expected = r"no such folder, and not a built-in dataset \(built-in datasets: digits, fashion-mnist:test"
    with pytest.raises(DataError, match=expected):
        load_dataset(str(tmp_path / "nowhere"))


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("SYNTHAUG_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "synthaug"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "synthaug"
    monkeypatch.setenv("SYNTHAUG_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    assert cache_dir("features", "cnn").is_dir()
