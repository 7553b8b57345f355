"""Files that travel by value, and a storage that every node reaches (a local path, a file:// URI)."""

from __future__ import annotations

import pickle

import pytest

from synthaug.errors import ConfigError
from synthaug.execution.transfer import FileBundle, FolderStorage


def write_model(folder, weights: bytes = b"weights") -> None:
    folder.mkdir(parents=True)
    (folder / "weights.safetensors").write_bytes(weights)
    (folder / "sub").mkdir()
    (folder / "sub" / "config.json").write_text("{}")
    (folder / "key.json").write_text('{"seed": 0}')


def test_a_bundle_carries_files_and_folders_by_value_key_json_last(tmp_path):
    scratch, driver = tmp_path / "scratch", tmp_path / "driver"
    write_model(scratch / "models" / "k")
    (scratch / "predictions").mkdir()
    (scratch / "predictions" / "p.npz").write_bytes(b"\x00\x01")
    collected = FileBundle.collect(scratch, [scratch / "predictions" / "p.npz", scratch / "models" / "k"])
    bundle = pickle.loads(pickle.dumps(collected))  # as it travels through Ray's object store
    assert [path for path, _ in bundle.files] == [
        "predictions/p.npz", "models/k/sub/config.json", "models/k/weights.safetensors", "models/k/key.json"
    ]  # fmt: skip
    assert bundle.size == 2 + 2 + 7 + 11
    bundle.write_into(driver)
    assert (driver / "predictions" / "p.npz").read_bytes() == b"\x00\x01"
    assert (driver / "models" / "k" / "sub" / "config.json").read_text() == "{}"


def test_a_bundle_never_writes_outside_its_root(tmp_path):
    with pytest.raises(ConfigError, match="must lie under"):
        FileBundle((("../escaped", b"x"),)).write_into(tmp_path / "root")
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-uri"])
def test_a_folder_storage_keeps_complete_folders(tmp_path, as_uri):
    location = tmp_path / "store"
    storage = FolderStorage(location.as_uri() if as_uri else str(location))
    write_model(tmp_path / "model", b"abc")
    assert not storage.has("models/k")
    storage.upload(tmp_path / "model", "models/k")
    assert storage.has("models/k")
    assert (location / "models" / "k" / "sub" / "config.json").read_text() == "{}"
    (location / "models" / "half").mkdir()  # a folder without its key.json is not complete
    assert not storage.has("models/half")
    storage.download("models/k", tmp_path / "copy" / "k")
    assert (tmp_path / "copy" / "k" / "weights.safetensors").read_bytes() == b"abc"
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["k"]  # no staging folder left


def test_a_relative_storage_path_is_resolved_where_it_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert FolderStorage.resolved("store") == str(tmp_path / "store")
    assert FolderStorage.resolved("s3://bucket/prefix") == "s3://bucket/prefix"


def test_an_unknown_file_system_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="storage nosuchfs://x: not a file system pyarrow can open"):
        FolderStorage("nosuchfs://x")
