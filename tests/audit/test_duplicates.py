"""Exact and near-duplicates within a set and against another set (leakage)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from synthaug.audit import DEFAULT_MIN_SIMILARITY, find_copies
from synthaug.data import ImageDataset, load_dataset

from helpers.audit_testing import noised


def _with(images: np.ndarray, name: str) -> ImageDataset:
    return ImageDataset.from_arrays(images, np.arange(len(images)) % 3, ["a", "b", "c"], name=name)


def test_exact_and_near_copies_within_a_set(make_pattern_dataset) -> None:
    images = make_pattern_dataset(n_per_class=10).as_array()[..., 0].copy()
    images[20] = images[2]  # exact copy
    images[25] = noised(images[7], seed=0)  # slightly noised copy
    matches = find_copies(_with(images, "copies"))
    assert np.flatnonzero(matches.found).tolist() == [20, 25]
    assert matches.index[20] == 2 and matches.exact[20] and matches.similarity[20] == 1.0
    assert matches.index[25] == 7 and not matches.exact[25] and DEFAULT_MIN_SIMILARITY <= matches.similarity[25] < 1.0
    # Exact-only search misses the noised copy.
    assert np.flatnonzero(find_copies(_with(images, "copies"), min_similarity=None).found).tolist() == [20]


def test_a_group_of_copies_points_at_its_first_member(make_pattern_dataset) -> None:
    images = make_pattern_dataset(n_per_class=4).as_array()[..., 0].copy()
    images[5] = images[1]
    images[9] = noised(images[1], seed=3)
    matches = find_copies(_with(images, "group"))
    assert matches.index[[1, 5, 9]].tolist() == [-1, 1, 1]


def test_copies_of_test_images_are_found_as_leakage(make_pattern_dataset) -> None:
    train = make_pattern_dataset(n_per_class=10, seed=0).as_array()[..., 0].copy()
    test = make_pattern_dataset(n_per_class=10, seed=1)
    train[4] = noised(test.as_array()[17, ..., 0], seed=5)
    train[11] = test.as_array()[3, ..., 0]
    matches = find_copies(_with(train, "train"), test)
    assert np.flatnonzero(matches.found).tolist() == [4, 11]
    assert matches.index[[4, 11]].tolist() == [17, 3] and matches.exact.tolist().count(True) == 1


def test_a_png_file_and_the_same_array_image_are_exact_copies(tmp_path, make_pattern_dataset) -> None:
    arrays = make_pattern_dataset(n_per_class=2)
    folder = tmp_path / "folder" / "a"
    folder.mkdir(parents=True)
    Image.fromarray(arrays.as_array()[4, ..., 0]).save(folder / "x.png")
    matches = find_copies(load_dataset(tmp_path / "folder"), arrays, min_similarity=None)
    assert matches.index.tolist() == [4] and matches.exact.tolist() == [True]


def test_flat_images_are_similar_to_nothing_unless_identical() -> None:
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    images[1] = 7  # another flat grey: a different image, not a near copy
    images[3] = 7
    matches = find_copies(_with(images, "flat"))
    assert matches.index.tolist() == [-1, -1, 0, 1] and matches.exact.tolist() == [False, False, True, True]
