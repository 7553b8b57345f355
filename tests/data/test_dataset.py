"""ImageDataset: construction, decoding, fingerprints, subsets, class matching, concatenation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from synthaug.data import ImageDataset, concat_datasets, load_dataset
from synthaug.errors import ConfigError, DataError


def test_from_arrays_items_and_array(tiny_arrays_dataset):
    dataset = tiny_arrays_dataset
    assert len(dataset) == 90
    assert dataset.classes == ["horizontal", "vertical", "diagonal"]
    assert dataset.targets.dtype == np.int64 and dataset.targets.shape == (90,)
    image, label = dataset[4]
    assert isinstance(image, Image.Image) and image.mode == "L" and image.size == (28, 28)
    assert label == 1
    pixels = dataset.as_array()
    assert pixels.shape == (90, 28, 28, 1) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[4, ..., 0], np.asarray(image))
    assert not pixels.flags.writeable
    assert dataset.as_array() is pixels  # memoised
    np.testing.assert_array_equal(dataset.sample_weights, np.ones(90))
    assert dataset.skipped == [] and dataset.root is None


def test_from_arrays_copies_the_callers_array():
    images = np.zeros((2, 4, 4), dtype=np.uint8)
    dataset = ImageDataset.from_arrays(images, [0, 1], ["a", "b"])
    images[0] = 255
    assert dataset.as_array().max() == 0


def test_as_array_modes_and_resize_match_pil(tiny_arrays_dataset):
    rgb = tiny_arrays_dataset.as_array(mode="RGB")
    assert rgb.shape == (90, 28, 28, 3)
    np.testing.assert_array_equal(rgb[7], np.asarray(tiny_arrays_dataset[7][0].convert("RGB")))
    resized = tiny_arrays_dataset.as_array(size=(14, 20), mode="L")
    assert resized.shape == (90, 14, 20, 1)
    expected = tiny_arrays_dataset[3][0].resize((20, 14), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(resized[3, ..., 0], np.asarray(expected))
    assert tiny_arrays_dataset.as_array(size=(28, 28)).shape == (90, 28, 28, 1)
    resized_rgb = tiny_arrays_dataset.as_array(size=(14, 20), mode="RGB")
    expected_rgb = tiny_arrays_dataset[3][0].convert("RGB").resize((20, 14), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(resized_rgb[3], np.asarray(expected_rgb))
    rgba = tiny_arrays_dataset.as_array(mode="RGBA")
    np.testing.assert_array_equal(rgba[3], np.asarray(tiny_arrays_dataset[3][0].convert("RGBA")))


def test_as_array_rejects_unknown_mode(tiny_arrays_dataset):
    with pytest.raises(ConfigError, match="mode"):
        tiny_arrays_dataset.as_array(mode="CMYK")


@pytest.mark.parametrize(
    ("images", "labels", "classes", "message"),
    [
        (np.zeros((2, 4, 4), np.float32), [0, 1], ["a", "b"], "uint8"),
        (np.zeros((2, 4, 4, 2), np.uint8), [0, 1], ["a", "b"], "shape"),
        (np.zeros((2, 4, 4), np.uint8), [0], ["a", "b"], "one integer label per image"),
        (np.zeros((2, 4, 4), np.uint8), [0, 2], ["a", "b"], r"\[0, 2\)"),
        (np.zeros((2, 4, 4), np.uint8), [0, 1], ["a", "a"], "unique"),
    ],
)
def test_from_arrays_rejects_bad_input(images, labels, classes, message):
    with pytest.raises(DataError, match=message):
        ImageDataset.from_arrays(images, labels, classes)


def test_records_of_in_memory_images(tiny_arrays_dataset):
    record = tiny_arrays_dataset.subset([5]).records[0]
    assert record == {"file_name": None, "source": "patterns-seed0", "index": 5, "label": "diagonal"}
    assert tiny_arrays_dataset.files[0] is None


def test_fingerprint_is_stable_and_content_addressed(make_pattern_dataset):
    first, again = make_pattern_dataset(seed=0), make_pattern_dataset(seed=0)
    digest = first.fingerprint()
    assert len(digest) == 64 and digest == again.fingerprint()
    assert make_pattern_dataset(seed=1).fingerprint() != digest
    renamed = ImageDataset.from_arrays(first.as_array(), first.targets, first.classes, name="other name")
    assert renamed.fingerprint() == digest

    changed_pixel = first.as_array().copy()
    changed_pixel[10, 5, 5, 0] ^= 1
    assert ImageDataset.from_arrays(changed_pixel, first.targets, first.classes).fingerprint() != digest
    changed_label = first.targets.copy()
    changed_label[10] = (changed_label[10] + 1) % 3
    assert ImageDataset.from_arrays(first.as_array(), changed_label, first.classes).fingerprint() != digest
    assert first.subset(np.arange(89)).fingerprint() != digest
    assert first.subset(np.arange(90)).fingerprint() == digest
    assert first.with_classes(["diagonal", "vertical", "horizontal"]).fingerprint() != digest
    assert first.with_sample_weights(np.full(90, 2.0)).fingerprint() != digest
    halves = concat_datasets([first.subset(slice(0, 40)), again.subset(slice(40, 90))])
    assert halves.fingerprint() == digest  # grouping into sources does not matter


def test_fingerprint_of_files_is_stable(tiny_image_folder):
    first = load_dataset(tiny_image_folder)
    assert load_dataset(tiny_image_folder).fingerprint() == first.fingerprint()
    split_in_two = concat_datasets([first.subset(slice(0, 7)), first.subset(slice(7, 90))])
    assert split_in_two.fingerprint() == first.fingerprint()
    class_dir = tiny_image_folder / "diagonal"
    (class_dir / "002.png").write_bytes((class_dir / "005.png").read_bytes())
    assert load_dataset(tiny_image_folder).fingerprint() != first.fingerprint()


def test_subset_forms_and_memo(tiny_arrays_dataset):
    full = tiny_arrays_dataset.as_array()
    picked = tiny_arrays_dataset.subset([3, 0, -1], name="three")
    assert picked.name == "three" and len(picked) == 3
    np.testing.assert_array_equal(picked.targets, tiny_arrays_dataset.targets[[3, 0, 89]])
    np.testing.assert_array_equal(picked.as_array(), full[[3, 0, 89]])
    assert len(tiny_arrays_dataset.subset(slice(10, 20))) == 10
    mask = tiny_arrays_dataset.targets == 2
    assert set(tiny_arrays_dataset.subset(mask).targets) == {2}
    assert len(tiny_arrays_dataset.subset([])) == 0
    with pytest.raises(DataError, match="indices"):
        tiny_arrays_dataset.subset([90])
    with pytest.raises(DataError, match="mask"):
        tiny_arrays_dataset.subset(np.ones(5, dtype=bool))


def test_with_classes_matches_by_name(tiny_arrays_dataset):
    order = ["diagonal", "extra class", "horizontal", "vertical"]
    reordered = tiny_arrays_dataset.with_classes(order)
    assert reordered.classes == order
    names_before = [tiny_arrays_dataset.classes[t] for t in tiny_arrays_dataset.targets]
    names_after = [reordered.classes[t] for t in reordered.targets]
    assert names_before == names_after
    assert [record["label"] for record in reordered.records] == names_before


def test_with_classes_names_the_missing_classes(tiny_arrays_dataset):
    with pytest.raises(DataError, match=r"\['diagonal'\] are not among"):
        tiny_arrays_dataset.with_classes(["horizontal", "vertical"])


def test_concat_mixes_arrays_and_files_with_weights(tiny_arrays_dataset, tiny_image_folder):
    folder = load_dataset(tiny_image_folder)
    mixed = concat_datasets([tiny_arrays_dataset, folder], weights=[1.0, 0.25])
    assert len(mixed) == 180 and mixed.classes == tiny_arrays_dataset.classes
    np.testing.assert_array_equal(mixed.sample_weights, np.r_[np.ones(90), np.full(90, 0.25)])
    # The folder's classes are sorted by name; concatenation re-indexes them by name.
    assert [mixed.classes[t] for t in mixed.targets[90:]] == [r["label"] for r in folder.records]
    np.testing.assert_array_equal(
        mixed.as_array(), np.concatenate([tiny_arrays_dataset.as_array(), folder.as_array()])
    )
    assert mixed.files[0] is None and mixed.files[90] == folder.files[0]
    assert mixed.subset([0, 95]).records[1]["file_name"] == folder.records[5]["file_name"]


def test_concat_rejects_other_classes_and_bad_weights(tiny_arrays_dataset):
    other = tiny_arrays_dataset.subset(tiny_arrays_dataset.targets < 2)
    renamed = ImageDataset.from_arrays(other.as_array(), other.targets, ["horizontal", "wavy"])
    expected = r"only in the first: \['diagonal', 'vertical'\].*only in the second: \['wavy'\]"
    with pytest.raises(DataError, match=expected):
        concat_datasets([tiny_arrays_dataset, renamed])
    with pytest.raises(DataError, match="weight"):
        concat_datasets([tiny_arrays_dataset, tiny_arrays_dataset], weights=[1.0])
    with pytest.raises(DataError, match="at least one"):
        concat_datasets([])


def test_mixed_image_sizes_need_a_size(tiny_arrays_dataset, make_pattern_dataset):
    mixed = concat_datasets([tiny_arrays_dataset, make_pattern_dataset(n_per_class=2, size=32)])
    with pytest.raises(DataError, match=r"size=\(H, W\)"):
        mixed.as_array()
    assert mixed.as_array(size=(16, 16)).shape == (96, 16, 16, 1)


def test_works_with_a_torch_dataloader(tiny_arrays_dataset):
    def collate(batch):
        images, labels = zip(*batch)
        return torch.stack([torch.from_numpy(np.array(image)) for image in images]), torch.tensor(labels)

    images, labels = next(iter(torch.utils.data.DataLoader(tiny_arrays_dataset, batch_size=8, collate_fn=collate)))
    assert images.shape == (8, 28, 28) and labels.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]


def test_pickles_for_dataloader_workers(tiny_arrays_dataset, tiny_image_folder):
    mixed = concat_datasets([tiny_arrays_dataset, load_dataset(tiny_image_folder)])
    restored = pickle.loads(pickle.dumps(mixed))
    assert restored.fingerprint() == mixed.fingerprint()
    np.testing.assert_array_equal(np.asarray(restored[100][0]), np.asarray(mixed[100][0]))
