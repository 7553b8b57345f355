"""Image folders: ImageFolder layout, HF metadata.jsonl, and every kind of bad input."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthaug.data import check_image_folder, load_dataset, load_image_folder, safe_join
from synthaug.errors import DataError


def _png_bytes(seed: int = 0, size: tuple[int, int] = (8, 8), mode: str = "L") -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(*size, len(mode)), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if mode == "L" else pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return root


def _write_metadata(root: Path, rows: list) -> None:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file()
    }


def test_image_folder_layout(tiny_image_folder, tiny_arrays_dataset):
    dataset = load_dataset(tiny_image_folder)
    assert dataset.classes == ["diagonal", "horizontal", "vertical"]  # sorted folder names
    assert len(dataset) == 90 and dataset.root == tiny_image_folder
    assert dataset.class_counts() == {"diagonal": 30, "horizontal": 30, "vertical": 30}
    record = dataset.records[0]
    assert record == {"file_name": "diagonal/002.png", "label": "diagonal"}
    assert dataset.files[0] == tiny_image_folder / "diagonal" / "002.png"
    # PNG is lossless: the pixels are those of the in-memory dataset the folder was written from.
    index = int(Path(record["file_name"]).stem)
    np.testing.assert_array_equal(dataset.as_array()[0], tiny_arrays_dataset.as_array()[index])
    assert load_dataset(tiny_image_folder).fingerprint() == dataset.fingerprint()


def test_hidden_and_non_image_files_are_ignored(tmp_path):
    root = _write_folder(
        tmp_path,
        {
            "cat/a.png": _png_bytes(),
            "cat/notes.txt": b"hello",
            "cat/.hidden.png": b"",
            ".git/x.png": b"",
            "dog/sub/b.PNG": _png_bytes(1),
        },
    )
    dataset = load_image_folder(root)
    assert dataset.classes == ["cat", "dog"]
    assert [r["file_name"] for r in dataset.records] == ["cat/a.png", "dog/sub/b.PNG"]


def test_metadata_jsonl_is_the_source_of_truth(tmp_path):
    root = _write_folder(
        tmp_path,
        {
            "t-shirt-top/0.png": _png_bytes(0),
            "t-shirt-top/1.png": _png_bytes(1),
            "bag/0.png": _png_bytes(2),
            "bag/unlisted.png": _png_bytes(3),
        },
    )
    _write_metadata(
        root,
        [
            {"file_name": "t-shirt-top/0.png", "label": "T-shirt/top", "prompt": "a photo of a t-shirt", "seed": 7},
            "",
            {"file_name": "bag/0.png", "label": "Bag", "prompt": "a photo of a bag", "seed": 8},
            {"file_name": "t-shirt-top/1.png", "label": "T-shirt/top", "prompt": "a photo of a t-shirt", "seed": 9},
        ],
    )
    dataset = load_dataset(root)
    assert dataset.classes == ["Bag", "T-shirt/top"]  # sorted unique labels, verbatim
    assert len(dataset) == 3  # bag/unlisted.png is not in the manifest
    # Images load sorted by file name, not in row order.
    assert dataset.targets.tolist() == [0, 1, 1]
    assert dataset.records[1] == {
        "file_name": "t-shirt-top/0.png",
        "label": "T-shirt/top",
        "prompt": "a photo of a t-shirt",
        "seed": 7,
    }
    assert [r["seed"] for r in dataset.with_classes(["T-shirt/top", "Bag"]).records] == [8, 7, 9]


def test_metadata_rows_in_any_order_load_the_same_dataset(tmp_path):
    """Workers commit generated images in the order their shards finish; the dataset (and so
    every shuffle and subsample drawn from it) must not depend on that order."""
    files = {f"{label}/{i}.png": _png_bytes(10 * j + i) for j, label in enumerate(["bag", "coat"]) for i in range(4)}
    rows = [{"file_name": name, "label": name.split("/")[0].title(), "seed": n} for n, name in enumerate(files)]
    loaded = []
    for order, permutation in enumerate([range(8), [5, 2, 7, 0, 3, 6, 1, 4]]):
        root = _write_folder(tmp_path / str(order), files)
        _write_metadata(root, [rows[i] for i in permutation])
        loaded.append(load_dataset(root))
    first, second = loaded
    assert [r["file_name"] for r in first.records] == sorted(files)
    assert first.records == second.records and first.targets.tolist() == second.targets.tolist()
    np.testing.assert_array_equal(first.as_array(), second.as_array())


def test_rgb_images_load_and_convert(tmp_path):
    root = _write_folder(tmp_path, {"a/0.png": _png_bytes(0, (6, 10), "RGB"), "b/0.png": _png_bytes(1, (6, 10), "RGB")})
    dataset = load_image_folder(root)
    assert dataset[0][0].mode == "RGB"
    assert dataset.as_array(mode="RGB").shape == (2, 6, 10, 3)
    assert dataset.as_array().shape == (2, 6, 10, 1)


def _truncated_png() -> bytes:
    data = _png_bytes(0, (32, 32))
    return data[: len(data) // 2]


BAD_FOLDERS = {
    # case: (files, metadata rows or None, where the error points, reason)
    "empty class folder": ({"cat/a.png": _png_bytes(), "dog/readme.txt": b"x"}, None, "dog", "has no images"),
    "zero bytes": ({"cat/a.png": _png_bytes(), "cat/b.png": b""}, None, "b.png", "empty"),
    "not an image": ({"cat/a.png": _png_bytes(), "cat/b.png": b"<html/>"}, None, "b.png", "not a readable image"),
    "truncated png": ({"cat/a.png": _png_bytes(), "cat/b.png": _truncated_png()}, None, "b.png", "truncated"),
    "malformed json": (
        {"cat/a.png": _png_bytes()},
        [{"file_name": "cat/a.png", "label": "cat"}, '{"file_name": "cat/b.png", "label": '],
        "metadata.jsonl:2",
        "malformed JSON",
    ),
    "missing file": (
        {"cat/a.png": _png_bytes()},
        [{"file_name": "cat/a.png", "label": "cat"}, {"file_name": "cat/gone.png", "label": "cat"}],
        "metadata.jsonl:2",
        "'cat/gone.png' does not exist",
    ),
    "parent escape": (
        {"cat/a.png": _png_bytes()},
        [{"file_name": "cat/a.png", "label": "cat"}, {"file_name": "cat/../../secret.png", "label": "cat"}],
        "metadata.jsonl:2",
        "escapes the dataset folder",
    ),
    "absolute path": (
        {"cat/a.png": _png_bytes()},
        [{"file_name": "/etc/passwd", "label": "cat"}, {"file_name": "cat/a.png", "label": "cat"}],
        "metadata.jsonl:1",
        "absolute path",
    ),
    "windows drive": (
        {"cat/a.png": _png_bytes()},
        [{"file_name": "cat/a.png", "label": "cat"}, {"file_name": "C:\\\\x.png", "label": "cat"}],
        "metadata.jsonl:2",
        "absolute path",
    ),
    "no label": (
        {"cat/a.png": _png_bytes()},
        [{"file_name": "cat/a.png", "label": "cat"}, {"file_name": "cat/a.png"}],
        "metadata.jsonl:2",
        "no 'label'",
    ),
    "row not an object": (
        {"cat/a.png": _png_bytes()},
        [{"file_name": "cat/a.png", "label": "cat"}, "[1, 2]"],
        "metadata.jsonl:2",
        "not a JSON object",
    ),
    "duplicate row": (
        {"cat/a.png": _png_bytes()},
        [{"file_name": "cat/a.png", "label": "cat"}, {"file_name": "cat/a.png", "label": "dog"}],
        "metadata.jsonl:2",
        "listed again",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_bad_input_is_one_line_error_or_skipped(tmp_path, case):
    files, rows, where, reason = BAD_FOLDERS[case]
    root = _write_folder(tmp_path / "data", files)
    if rows is not None:
        _write_metadata(root, rows)
    before = _snapshot(root)

    with pytest.raises(DataError) as raised:
        load_dataset(root)
    message = str(raised.value)
    assert where in message and reason in message and "skip_bad" in message and "\n" not in message

    dataset = load_dataset(root, skip_bad=True)
    assert len(dataset) == 1 and dataset.records[0]["file_name"] == "cat/a.png"
    assert len(dataset.skipped) == 1
    skipped_where, skipped_reason = dataset.skipped[0]
    assert where in skipped_where and reason in skipped_reason
    assert _snapshot(root) == before  # nothing in the user's folder changed


@pytest.mark.parametrize(("width", "height"), [(40, 30), (30, 20)], ids=["over twice the limit", "just over the limit"])
def test_decompression_bomb_is_refused(tmp_path, monkeypatch, width, height):
    root = _write_folder(tmp_path, {"cat/a.png": _png_bytes(), "cat/big.png": _png_bytes(1, (height, width))})
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    with pytest.raises(DataError, match=r"big\.png: image has more pixels than Pillow's decompression-bomb limit"):
        load_image_folder(root)
    assert load_image_folder(root, skip_bad=True).skipped[0][0].endswith("big.png")


def test_truncated_jpeg_is_a_clear_error_when_decoded(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)).save(buffer, format="JPEG")
    jpeg = buffer.getvalue()
    root = _write_folder(tmp_path, {"cat/a.png": _png_bytes(), "cat/b.jpg": jpeg[: len(jpeg) * 2 // 3]})
    # Pillow's quick verify() cannot see a truncated JPEG, so the folder loads ...
    dataset = load_image_folder(root)
    # ... and decoding it raises a one-line error naming the file,
    with pytest.raises(DataError, match=r"b\.jpg: cannot decode the image, the file is corrupt or truncated"):
        dataset[1]
    with pytest.raises(DataError, match=r"b\.jpg"):
        dataset.as_array()
    # while the thorough check finds it without raising.
    result = check_image_folder(root)
    assert result.class_counts == {"cat": 1}
    assert [Path(where).name for where, _ in result.bad] == ["b.jpg"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "missing", "no such folder"),
        (lambda root: _write_folder(root, {"file.png": _png_bytes()}) / "file.png", "is a file, not a folder"),
        (lambda root: _write_folder(root, {"a.png": _png_bytes()}), "no class sub-folders"),
        (lambda root: _write_folder(root, {"cat/a.png": b""}), "no usable images"),
    ],
    ids=["missing", "file", "flat", "all bad"],
)
def test_unusable_folders(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        load_image_folder(make(tmp_path), skip_bad=True)


def test_images_of_different_sizes_need_a_size(tmp_path):
    root = _write_folder(tmp_path, {"cat/a.png": _png_bytes(0, (8, 8)), "cat/b.png": _png_bytes(1, (9, 8))})
    dataset = load_image_folder(root)
    with pytest.raises(DataError, match=r"b\.png: image is 8x9 but .*a\.png is 8x8; pass size"):
        dataset.as_array()
    assert dataset.as_array(size=(8, 8)).shape == (2, 8, 8, 1)


def test_safe_join(tmp_path):
    assert safe_join(tmp_path, "a/b.png") == tmp_path / "a" / "b.png"
    for escaping in ["../x", "a/../../x", "/abs", "\\\\server\\share", ""]:
        with pytest.raises(DataError):
            safe_join(tmp_path, escaping)


def test_metadata_folder_loads_the_same_in_hugging_face_datasets(tmp_path, monkeypatch):
    hf_datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    root = _write_folder(
        tmp_path / "generated",
        {"t-shirt-top/0.png": _png_bytes(0), "bag/0.png": _png_bytes(1), "bag/1.png": _png_bytes(2)},
    )
    rows = [
        {"file_name": "t-shirt-top/0.png", "label": "T-shirt/top", "prompt": "a t-shirt", "seed": 0},
        {"file_name": "bag/0.png", "label": "Bag", "prompt": "a bag", "seed": 1},
        {"file_name": "bag/1.png", "label": "Bag", "prompt": "a bag", "seed": 2},
    ]
    _write_metadata(root, rows)
    ours = load_dataset(root)
    theirs = hf_datasets.load_dataset("imagefolder", data_dir=str(root), split="train", cache_dir=str(tmp_path / "hf"))
    by_name = {Path(row["image"].filename).relative_to(root).as_posix(): row for row in theirs}
    assert sorted(by_name) == sorted(row["file_name"] for row in rows)
    for record, pixels in zip(ours.records, ours.as_array()):
        row = by_name[record["file_name"]]
        assert (row["label"], row["prompt"], row["seed"]) == (record["label"], record["prompt"], record["seed"])
        np.testing.assert_array_equal(np.asarray(row["image"]), pixels[..., 0])
