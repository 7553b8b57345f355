"""``hf:`` datasets, offline: ``save_to_disk`` folders and parquet files built in code."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthaug.data import ImageDataset, load_dataset
from synthaug.data.hf import HFImageSource, parse_hf_spec
from synthaug.errors import DataError

datasets = pytest.importorskip("datasets")

CLASSES = ["horizontal", "vertical", "diagonal"]


@pytest.fixture(autouse=True)
def offline_cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    monkeypatch.setenv("SYNTHAUG_CACHE_DIR", str(tmp_path / "synthaug-cache"))


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def image_table(images: np.ndarray, labels: np.ndarray, **extra_columns: list) -> datasets.Dataset:
    """A Dataset with an ``Image`` column of PNGs, a ``ClassLabel`` and any extra columns."""
    features = {"picture": datasets.Image(), "kind": datasets.ClassLabel(names=CLASSES)}
    features.update({name: datasets.Value("string") for name in extra_columns})
    pictures = [{"bytes": png(image), "path": None} for image in images]
    data = {"picture": pictures, "kind": labels.tolist(), **extra_columns}
    return datasets.Dataset.from_dict(data, features=datasets.Features(features))


@pytest.fixture
def pattern_splits(make_pattern_dataset) -> dict[str, ImageDataset]:
    return {
        "train": make_pattern_dataset(n_per_class=6, size=16),
        "test": make_pattern_dataset(n_per_class=4, seed=1, size=16),
    }


@pytest.fixture
def saved_folder(tmp_path: Path, pattern_splits: dict[str, ImageDataset]) -> Path:
    """A ``save_to_disk`` DatasetDict with ``train`` and ``test`` splits."""
    folder = tmp_path / "patterns"
    splits = {name: image_table(split.as_array()[..., 0], split.targets) for name, split in pattern_splits.items()}
    datasets.DatasetDict(splits).save_to_disk(str(folder))
    return folder


def test_a_saved_folder_opens_lazily_with_classes_from_the_class_label(
    saved_folder: Path, pattern_splits: dict[str, ImageDataset], tmp_path: Path
) -> None:
    train = load_dataset(f"hf:{saved_folder}:train")
    expected = pattern_splits["train"]
    assert train.name == f"hf:{saved_folder}:train" and train.classes == CLASSES and len(train) == 18
    np.testing.assert_array_equal(train.targets, expected.targets)
    np.testing.assert_array_equal(train.as_array(), expected.as_array())
    image, label = train[4]
    assert image.size == (16, 16) and label == expected.targets[4]
    assert train.records[4] == {"file_name": None, "source": train.name, "index": 4, "label": CLASSES[label]}

    # Content-based fingerprint: the same PNGs as image files give the same address.
    paths = []
    for index, pixels in enumerate(expected.as_array()[..., 0]):
        paths.append(tmp_path / f"{index}.png")
        paths[-1].write_bytes(png(pixels))
    as_files = ImageDataset.from_files(paths, expected.targets, CLASSES, [{}] * len(paths), name="files")
    assert train.fingerprint() == as_files.fingerprint()
    assert load_dataset(f"hf:{saved_folder}:train[1:]").fingerprint() == as_files.subset(slice(1, None)).fingerprint()

    # Worker processes receive the dataset pickled: it must survive that, still lazy.
    copy = pickle.loads(pickle.dumps(train))
    assert isinstance(copy._sources[0], HFImageSource)
    np.testing.assert_array_equal(np.asarray(copy[5][0]), np.asarray(train[5][0]))


def test_images_are_decoded_only_when_asked_for(tmp_path: Path, pattern_splits: dict[str, ImageDataset]) -> None:
    split = pattern_splits["train"]
    table = image_table(split.as_array()[..., 0], split.targets)
    broken = table.cast_column("picture", datasets.Image(decode=False)).map(
        lambda row, index: {"picture": {"bytes": b"not a png" if index == 3 else row["picture"]["bytes"],
                                        "path": None}},
        with_indices=True,
    ).cast_column("picture", datasets.Image())
    broken.save_to_disk(str(tmp_path / "broken"))
    dataset = load_dataset(f"hf:{tmp_path / 'broken'}")  # a bare Dataset: its one split needs no name
    assert dataset[2][1] == split.targets[2]
    with pytest.raises(DataError, match=r"row 3: cannot decode the image .*fix or drop that row"):
        dataset[3]


def test_parquet_files_open_like_the_folder(saved_folder: Path, tmp_path: Path) -> None:
    table = datasets.load_from_disk(str(saved_folder))["train"]
    shards = tmp_path / "shards"
    for index in range(2):
        table.shard(2, index, contiguous=True).to_parquet(str(shards / f"part-{index}.parquet"))
    from_parquet = load_dataset(f"hf:parquet:{shards}/*.parquet")
    from_folder = load_dataset(f"hf:{saved_folder}:train")
    assert from_parquet.classes == CLASSES and len(from_parquet) == 18
    assert from_parquet.fingerprint() == from_folder.fingerprint()
    assert len(load_dataset(f"hf:parquet:{shards}/*.parquet:train[:5]")) == 5
    with pytest.raises(DataError, match=r"unknown split 'test'; the dataset has train"):
        load_dataset(f"hf:parquet:{shards}/*.parquet:test")
    with pytest.raises(DataError, match="no parquet files match"):
        load_dataset(f"hf:parquet:{tmp_path}/none/*.parquet")


def test_splits_and_slices_are_checked(saved_folder: Path) -> None:
    assert len(load_dataset(f"hf:{saved_folder}:test[-3:]")) == 3
    with pytest.raises(DataError, match=r"unknown split 'validation'; the dataset has train, test$"):
        load_dataset(f"hf:{saved_folder}:validation")
    with pytest.raises(DataError, match=r"has splits train, test; name one, e.g. hf:.*:train$"):
        load_dataset(f"hf:{saved_folder}")
    with pytest.raises(DataError, match=r"\[:100\]: index 100 is out of range \(.* has 18 images\)"):
        load_dataset(f"hf:{saved_folder}:train[:100]")
    with pytest.raises(DataError, match=r"selects no images"):
        load_dataset(f"hf:{saved_folder}:train[30:]")
    with pytest.raises(DataError, match="no such folder"):
        load_dataset(f"hf:{saved_folder}-missing:train")


def test_columns_are_found_from_the_features_or_named(tmp_path: Path, pattern_splits: dict[str, ImageDataset]) -> None:
    split = pattern_splits["test"]
    pixels = split.as_array()[..., 0]
    names = [CLASSES[label] for label in split.targets]

    two_labels = image_table(pixels, split.targets).add_column("coarse", [0] * len(split)).cast_column(
        "coarse", datasets.ClassLabel(names=["pattern"])
    )
    two_labels.save_to_disk(str(tmp_path / "two-labels"))
    several = r"several ClassLabel columns \(kind, coarse\); choose one with \?label_column=kind"
    with pytest.raises(DataError, match=several):
        load_dataset(f"hf:{tmp_path / 'two-labels'}")
    coarse = load_dataset(f"hf:{tmp_path / 'two-labels'}?label_column=coarse")
    assert coarse.classes == ["pattern"] and coarse.name.endswith("?label_column=coarse")

    # Labels as strings: classes are their sorted names.
    strings = image_table(pixels, split.targets, name=names).remove_columns("kind")
    strings.save_to_disk(str(tmp_path / "strings"))
    with pytest.raises(DataError, match=r"no ClassLabel column among picture \(Image\), name \(Value\); name one"):
        load_dataset(f"hf:{tmp_path / 'strings'}")
    by_name = load_dataset(f"hf:{tmp_path / 'strings'}?label_column=name")
    assert by_name.classes == sorted(CLASSES) and [by_name.classes[t] for t in by_name.targets] == names

    no_image = datasets.Dataset.from_dict({"file": [f"{index}.png" for index in range(len(names))], "name": names})
    no_image.save_to_disk(str(tmp_path / "no-image"))
    no_image_column = r"no Image column among file \(Value\), name \(Value\); name one with \?image_column"
    with pytest.raises(DataError, match=no_image_column):
        load_dataset(f"hf:{tmp_path / 'no-image'}?label_column=name")
    with pytest.raises(DataError, match=r"image_column='file' is Value\('string'\), not an Image; cast it"):
        load_dataset(f"hf:{tmp_path / 'no-image'}?label_column=name&image_column=file")
    with pytest.raises(DataError, match=r"label_column='nope' is not a column; the columns are picture, name"):
        load_dataset(f"hf:{tmp_path / 'strings'}?label_column=nope")
    with pytest.raises(DataError, match=r"unknown option 'label'; the options are image_column, label_column, subset"):
        load_dataset(f"hf:{tmp_path / 'strings'}?label=name")


def test_spec_parsing() -> None:
    spec = parse_hf_spec("hf:uoft-cs/cifar100:train[10:-5]?label_column=coarse_label&subset=default")
    assert (spec.kind, spec.location, spec.split, spec.start, spec.stop) == ("hub", "uoft-cs/cifar100", "train", 10, -5)
    assert spec.options == {"label_column": "coarse_label", "subset": "default"}
    assert spec.unsliced == "hf:uoft-cs/cifar100:train?label_column=coarse_label&subset=default"
    assert parse_hf_spec("hf:mnist").split is None and parse_hf_spec("hf:mnist").kind == "hub"
    assert parse_hf_spec("hf:parquet:/data/*.parquet:test").kind == "parquet"
    assert parse_hf_spec("hf:parquet:/data/*.parquet:test").location == "/data/*.parquet"
    assert parse_hf_spec("hf:./folder").kind == "disk"


@pytest.mark.slow
def test_a_study_trains_on_an_hf_dataset(saved_folder: Path, tmp_path: Path) -> None:
    from synthaug.study import parse_config, run_study

    config = parse_config({
        "real": {"train": f"hf:{saved_folder}:train", "test": f"hf:{saved_folder}:test", "val_fraction": 0.34},
        "regimes": [{"name": "real", "data": "real", "sizes": [3]}],
        "backbones": [{"name": "cnn", "params": {"image_size": 16, "channels": [4], "hidden": 8}}],
        "methods": ["deterministic"],
        "method_params": {"epochs": 2, "batch_size": 8},
        "seeds": [0],
        "bootstrap_resamples": 100,
    })
    result = run_study(config, tmp_path / "run")
    (row,) = result.results
    assert row.n_train == 9 and result.analysis.classes == CLASSES
    assert result.analysis.dataset_sizes["test"] == 12
    assert 0.0 <= row.metrics["accuracy"] <= 1.0
