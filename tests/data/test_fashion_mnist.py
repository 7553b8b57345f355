"""Fashion-MNIST: the Debian files, idx parsing, slices, and the verified download path.

Downloads are tested against a local http.server serving tiny idx files built here; the
test suite never touches the network.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading

import numpy as np
import pytest

from synthaug.data import describe_builtin_datasets, fashion_mnist, load_dataset
from synthaug.errors import DataError


@pytest.mark.slow
def test_debian_train_and_test(fashion_mnist_available):
    train, test = load_dataset("fashion-mnist:train"), load_dataset("fashion-mnist:test")
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.classes == test.classes == fashion_mnist.CLASSES
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    for dataset in (train, test):
        assert dataset.targets.min() == 0 and dataset.targets.max() == 9
        assert set(dataset.class_counts().values()) == {len(dataset) // 10}  # balanced
    pixels = train.as_array()
    assert pixels.shape == (60_000, 28, 28, 1) and pixels.dtype == np.uint8
    assert train.as_array(mode="RGB").shape == (60_000, 28, 28, 3)


@pytest.mark.slow
def test_slices(fashion_mnist_available):
    full = {split: load_dataset(f"fashion-mnist:{split}") for split in ("train", "test")}
    for spec, expected in [
        ("fashion-mnist:train[50000:]", np.arange(50_000, 60_000)),
        ("fashion-mnist:train[:1000]", np.arange(1000)),
        ("fashion-mnist:test[100:200]", np.arange(100, 200)),
        ("fashion-mnist:test[-10:]", np.arange(9990, 10_000)),
    ]:
        sliced = load_dataset(spec)
        whole = full[spec.split(":")[1].split("[")[0]]
        assert sliced.name == spec and len(sliced) == len(expected)
        np.testing.assert_array_equal(sliced.targets, whole.targets[expected])
        np.testing.assert_array_equal(sliced.as_array(), whole.as_array()[expected])
        assert sliced.records[0]["index"] == expected[0]
    with pytest.raises(DataError, match=r"selects no images \(fashion-mnist:train has 60000\)"):
        load_dataset("fashion-mnist:train[70000:]")


def test_unknown_split():
    with pytest.raises(DataError, match="fashion-mnist:val: unknown split"):
        load_dataset("fashion-mnist:val")


def _idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


@pytest.fixture
def tiny_idx_files(tmp_path) -> dict[str, bytes]:
    """Both splits as tiny gzipped idx files, keyed by official file name."""
    rng = np.random.default_rng(0)
    files = {}
    for split, n in [("train", 30), ("test", 20)]:
        images_name, labels_name = fashion_mnist.FILES[split]
        files[images_name] = _idx_gz(rng.integers(0, 256, (n, 28, 28)))
        files[labels_name] = _idx_gz(np.arange(n) % 10)
    return files


@pytest.fixture
def file_server(tmp_path, tiny_idx_files):
    """A local HTTP server for the tiny idx files; yields its base URL."""
    served = tmp_path / "served"
    served.mkdir()
    for name, data in tiny_idx_files.items():
        (served / name).write_bytes(data)

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=served))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _md5s(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}


def test_download_verifies_and_reads_back(tmp_path, file_server, tiny_idx_files):
    folder = tmp_path / "cache"
    fashion_mnist.download_fashion_mnist(folder, "test", base_url=file_server, checksums=_md5s(tiny_idx_files))
    assert sorted(p.name for p in folder.iterdir()) == sorted(fashion_mnist.FILES["test"])
    images, labels = fashion_mnist.read_fashion_mnist(folder, "test")
    assert images.shape == (20, 28, 28) and labels.tolist() == [i % 10 for i in range(20)]


def test_checksum_mismatch_keeps_nothing(tmp_path, file_server, tiny_idx_files):
    folder = tmp_path / "cache"
    wrong = {name: "0" * 32 for name in tiny_idx_files}
    expected = r"t10k-images-idx3-ubyte\.gz: downloaded file has md5 [0-9a-f]{32}, expected 0{32}"
    with pytest.raises(DataError, match=expected):
        fashion_mnist.download_fashion_mnist(folder, "test", base_url=file_server, checksums=wrong)
    assert list(folder.iterdir()) == []


def test_failed_download_is_a_clear_error(tmp_path, file_server, tiny_idx_files):
    folder = tmp_path / "cache"
    with pytest.raises(DataError, match="download failed .*dataset-fashion-mnist"):
        fashion_mnist.download_fashion_mnist(
            folder, "test", base_url=file_server + "missing/", checksums=_md5s(tiny_idx_files)
        )
    assert list(folder.iterdir()) == []


@pytest.fixture
def no_system_copy(tmp_path, monkeypatch):
    """Hide the Debian copy and point the user cache at an empty folder."""
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", (tmp_path / "no-system-copy",))
    monkeypatch.setenv("SYNTHAUG_CACHE_DIR", str(tmp_path / "user-cache"))
    return tmp_path / "user-cache" / "fashion-mnist"


def test_load_by_name_downloads_into_the_cache_once(no_system_copy, monkeypatch, file_server, tiny_idx_files):
    monkeypatch.setattr(fashion_mnist, "MD5", _md5s(tiny_idx_files))
    monkeypatch.setenv(fashion_mnist.URL_ENV, file_server)
    monkeypatch.delenv(fashion_mnist.OFFLINE_ENV)
    status = {s.name: s.location for s in describe_builtin_datasets()}
    assert status["fashion-mnist:train"].startswith(f"not found, will download from {file_server}")

    dataset = load_dataset("fashion-mnist:train[10:]")
    assert len(dataset) == 20 and dataset.classes == fashion_mnist.CLASSES
    assert sorted(p.name for p in no_system_copy.iterdir()) == sorted(fashion_mnist.FILES["train"])
    # Found in the cache from now on, even with downloads forbidden.
    monkeypatch.setenv(fashion_mnist.OFFLINE_ENV, "1")
    assert load_dataset("fashion-mnist:train").fingerprint() == load_dataset("fashion-mnist:train").fingerprint()
    assert {s.name: s.location for s in describe_builtin_datasets()}["fashion-mnist:train"] == str(no_system_copy)


def test_offline_without_files_says_how_to_install(no_system_copy):
    expected = "SYNTHAUG_OFFLINE forbids downloading; install it with `apt install dataset-fashion-mnist`"
    with pytest.raises(DataError, match=expected):
        load_dataset("fashion-mnist:test")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not gzip at all", "cannot read the gzip file"),
        (gzip.compress(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc", mtime=0), "bad magic number"),
        (gzip.compress(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"abc", mtime=0), "truncated"),
    ],
    ids=["not gzip", "not uint8", "truncated"],
)
def test_bad_idx_files(tmp_path, data, message):
    path = tmp_path / "bad-idx1-ubyte.gz"
    path.write_bytes(data)
    with pytest.raises(DataError, match=message):
        fashion_mnist.read_idx(path)


def test_idx_round_trip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x.gz"
    path.write_bytes(_idx_gz(array))
    np.testing.assert_array_equal(fashion_mnist.read_idx(path), array)
