"""Fashion-MNIST: 70,000 28x28 grayscale images of 10 kinds of Zalando articles.

The four gzipped idx files are looked for, in order, in ``/usr/share/datasets/fashion-mnist``
(Debian package ``dataset-fashion-mnist``) and in ``<cache>/fashion-mnist`` (see
:func:`synthaug.data.cache.cache_root`). If neither has them they are downloaded from the
official source into the cache, each checked against the md5 published in the official
README and moved into place only once it matched (no half-written file is ever left).
Set ``SYNTHAUG_OFFLINE=1`` to forbid downloading (the test suite does) and
``SYNTHAUG_FASHION_MNIST_URL`` to use a mirror.

Files found locally are not checksummed (Debian recompresses them, so their gzip bytes
differ from the official ones); their idx headers and sizes are checked instead.

References:
    Xiao, Rasul and Vollgraf. Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine
    Learning Algorithms. arXiv:1708.07747, 2017. https://github.com/zalandoresearch/fashion-mnist
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from synthaug.data.cache import cache_root
from synthaug.data.dataset import ImageDataset
from synthaug.errors import DataError
from synthaug.fileio import write_atomically
from synthaug.progress import ProgressCallback, report

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
"""The official class names; label ``k`` is ``CLASSES[k]``."""

SPLITS = {"train": 60_000, "test": 10_000}
"""Split name -> number of images."""

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
"""Split name -> (images file, labels file)."""

MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
"""md5 of each official file, from the Fashion-MNIST README."""

OFFICIAL_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
URL_ENV = "SYNTHAUG_FASHION_MNIST_URL"
OFFLINE_ENV = "SYNTHAUG_OFFLINE"

SYSTEM_DIRS = (Path("/usr/share/datasets/fashion-mnist"),)
"""Read-only system folders searched before the user cache."""

_IDX_UINT8 = 0x08


def cache_folder() -> Path:
    """Where downloaded files go: ``<cache_root>/fashion-mnist``."""
    return cache_root() / "fashion-mnist"


def download_url() -> str:
    """The base URL downloads use: ``$SYNTHAUG_FASHION_MNIST_URL`` or the official one."""
    return os.environ.get(URL_ENV) or OFFICIAL_URL


def downloads_allowed() -> bool:
    """False when ``$SYNTHAUG_OFFLINE`` is set to anything but ``""`` or ``"0"``."""
    return os.environ.get(OFFLINE_ENV, "") in ("", "0")


def find_fashion_mnist(split: str) -> Path | None:
    """The first folder (system folders, then the cache) holding both files of ``split``."""
    for folder in (*SYSTEM_DIRS, cache_folder()):
        if all((folder / file_name).is_file() for file_name in FILES[split]):
            return folder
    return None


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped idx file of unsigned bytes (the MNIST format) into a uint8 array.

    Raises:
        DataError: naming the file if it is not a complete uint8 idx file.
    """
    try:
        with gzip.open(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read the gzip file ({error}); replace it with the official file") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _IDX_UINT8:
        raise DataError(f"{path}: not a uint8 idx file (bad magic number); replace it with the official file")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise DataError(
            f"{path}: idx header announces shape {shape} but the file holds {len(data) - header} bytes "
            "of data; the file is truncated, replace it with the official file"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_fashion_mnist(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 ``(N, 28, 28)`` and labels int64 ``(N,)`` of ``split`` in ``folder``."""
    images_file, labels_file = (folder / name for name in FILES[split])
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{images_file}: expected 28x28 images, got shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_file}: expected {len(images)} labels to match {images_file}, got shape {labels.shape}"
        )
    if labels.size and labels.max() >= len(CLASSES):
        raise DataError(f"{labels_file}: labels must be 0-9, found {labels.max()}")
    return images, labels.astype(np.int64)


def _download_file(url: str, destination: Path, expected_md5: str, progress: ProgressCallback | None = None) -> None:
    """Stream ``url`` into ``destination`` through a temporary file, checking its md5."""

    def download(handle: BinaryIO) -> None:
        md5, done = hashlib.md5(), 0
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            report(progress, "download", 0, total, unit="bytes", item=destination.name)
            while chunk := response.read(1 << 20):
                md5.update(chunk)
                handle.write(chunk)
                done += len(chunk)
                report(progress, "download", done, total, unit="bytes", item=destination.name)
        report(progress, "download", done, total, unit="bytes", item=destination.name, finished=True)
        if md5.hexdigest() != expected_md5:
            raise DataError(
                f"{url}: downloaded file has md5 {md5.hexdigest()}, expected {expected_md5}; nothing was "
                f"saved. Retry later, or install the Debian package dataset-fashion-mnist"
            )

    try:
        write_atomically(destination, download)  # a failed or wrong download leaves nothing behind
    except (urllib.error.URLError, OSError) as error:
        raise DataError(
            f"{url}: download failed ({getattr(error, 'reason', error)}); check the network, install the "
            f"Debian package dataset-fashion-mnist, or copy the four .gz files into {destination.parent}"
        ) from error


def download_fashion_mnist(
    folder: Path,
    split: str,
    *,
    base_url: str | None = None,
    checksums: dict[str, str] | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Download the files of ``split`` missing from ``folder``, verified, atomically.

    Args:
        folder: Destination folder (created if needed).
        split: ``"train"`` or ``"test"``.
        base_url: Base URL of the files; defaults to :func:`download_url`.
        checksums: File name -> md5; defaults to the official :data:`MD5`.
        progress: Called with progress events of each download.

    Returns:
        ``folder``.

    Raises:
        DataError: if a download fails or a checksum does not match (no file is kept).
    """
    base_url = (base_url or download_url()).rstrip("/") + "/"
    checksums = MD5 if checksums is None else checksums
    folder.mkdir(parents=True, exist_ok=True)
    for file_name in FILES[split]:
        if not (folder / file_name).is_file():
            _download_file(base_url + file_name, folder / file_name, checksums[file_name], progress)
    return folder


def load_fashion_mnist(split: str, *, progress: ProgressCallback | None = None) -> ImageDataset:
    """Fashion-MNIST ``split`` (``"train"`` or ``"test"``), found or downloaded as above.

    Args:
        split: ``"train"`` or ``"test"``.
        progress: Called with progress events of a download (when one is needed).

    Returns:
        An in-memory dataset named ``fashion-mnist:<split>`` with :data:`CLASSES`.
    """
    if split not in FILES:
        raise DataError(f"fashion-mnist has no split {split!r}; choose one of {sorted(FILES)}")
    folder = find_fashion_mnist(split)
    if folder is None:
        searched = ", ".join(str(path) for path in (*SYSTEM_DIRS, cache_folder()))
        if not downloads_allowed():
            raise DataError(
                f"Fashion-MNIST ({split}) is not in {searched} and {OFFLINE_ENV} forbids downloading; "
                f"install it with `apt install dataset-fashion-mnist` or copy the .gz files into {cache_folder()}"
            )
        folder = download_fashion_mnist(cache_folder(), split, progress=progress)
    images, labels = read_fashion_mnist(folder, split)
    return ImageDataset.from_arrays(images, labels, CLASSES, name=f"fashion-mnist:{split}")
