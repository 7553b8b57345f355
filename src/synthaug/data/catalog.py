"""Built-in datasets by name, and :func:`load_dataset`, the one way to open any dataset."""

from __future__ import annotations

import importlib.metadata
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from synthaug.data import digits, fashion_mnist, hf, shift
from synthaug.data.dataset import ImageDataset
from synthaug.data.folder import load_image_folder
from synthaug.errors import DataError
from synthaug.registry import Registry


@dataclass(frozen=True)
class BuiltinDataset:
    """A dataset synthaug can load by name."""

    name: str
    """Spec name, e.g. ``"fashion-mnist:train"``."""
    size: int
    """Number of images."""
    load: Callable[[], ImageDataset]
    """Loads the whole dataset."""
    locate: Callable[[], str]
    """Says where the data is, or where it would come from."""


def _locate_fashion_mnist(split: str) -> str:
    folder = fashion_mnist.find_fashion_mnist(split)
    if folder is not None:
        return str(folder)
    if not fashion_mnist.downloads_allowed():
        return f"not found; downloads disabled by {fashion_mnist.OFFLINE_ENV}"
    return f"not found, will download from {fashion_mnist.download_url()} into {fashion_mnist.cache_folder()}"


BUILTIN_DATASETS: Registry[BuiltinDataset] = Registry("built-in dataset")
for _split, _size in fashion_mnist.SPLITS.items():
    BUILTIN_DATASETS.register(f"fashion-mnist:{_split}")(
        BuiltinDataset(
            name=f"fashion-mnist:{_split}",
            size=_size,
            load=lambda split=_split: fashion_mnist.load_fashion_mnist(split),
            locate=lambda split=_split: _locate_fashion_mnist(split),
        )
    )
BUILTIN_DATASETS.register("digits")(
    BuiltinDataset(
        name="digits",
        size=digits.SIZE,
        load=digits.load_digits_dataset,
        locate=lambda: f"bundled with scikit-learn {importlib.metadata.version('scikit-learn')}",
    )
)

# A built-in name with an optional python-style slice of indices: "fashion-mnist:train[50000:]".
_SPEC = re.compile(r"(?P<name>[a-z0-9-]+(?::[a-z0-9-]+)?)(?:\[(?P<start>-?\d*):(?P<stop>-?\d*)\])?")


def _builtin_help() -> str:
    names = ", ".join(BUILTIN_DATASETS.keys())
    return (f"built-in datasets: {names}, optionally sliced like fashion-mnist:train[50000:], or corrupted "
            "like fashion-mnist-c:test:blur:3; Hugging Face datasets as hf:NAME[:SPLIT]")


def _slice(dataset: ImageDataset, start: int | None, stop: int | None, spec: str) -> ImageDataset:
    """``dataset[start:stop]`` named ``spec``, or a one-line error if it is empty or out of range."""
    sliced = dataset.subset(slice(start, stop), name=spec)
    if len(sliced) == 0:
        raise DataError(f"{spec}: the slice selects no images ({dataset.name} has {len(dataset)}); fix the indices")
    outside = [bound for bound in (start, stop) if bound is not None and not -len(dataset) <= bound <= len(dataset)]
    if outside:
        raise DataError(f"{spec}: index {outside[0]} is out of range ({dataset.name} has {len(dataset)} images); "
                        f"use indices in [-{len(dataset)}, {len(dataset)}]")
    return sliced


def load_dataset(spec: str | os.PathLike, *, skip_bad: bool = False) -> ImageDataset:
    """Open a dataset by built-in name or image-folder path.

    Args:
        spec: A built-in name (``fashion-mnist:train``, ``fashion-mnist:test``, ``digits``),
            optionally with a python-style slice of indices (``fashion-mnist:train[50000:]``,
            ``[:1000]``, ``[100:200]``, negative indices allowed); or the path of an image
            folder (see :mod:`synthaug.data.folder`). A string naming a built-in means the
            built-in; write ``./digits`` for a folder of that name. A ``Path`` is always a
            folder. A corrupted copy (:mod:`synthaug.data.shift`) is
            ``fashion-mnist-c:test:<corruption>:<severity>`` or
            ``shift:<corruption>:<severity>:<any spec>``. A Hugging Face dataset (Hub, a
            ``save_to_disk`` folder or parquet files) is ``hf:NAME[:SPLIT][START:STOP]``; see
            :mod:`synthaug.data.hf`.
        skip_bad: For folders, skip bad files and rows (listed in ``.skipped``) instead of
            raising.

    Raises:
        DataError: one line saying what is wrong and what to do.
    """
    if not isinstance(spec, os.PathLike):
        shifted = shift.parse_shift_spec(str(spec).strip())
        if shifted is not None:
            corruption, severity, source = shifted
            return shift.corrupt(load_dataset(source, skip_bad=skip_bad), corruption, severity)
        if hf.is_hf_spec(str(spec).strip()):
            parsed = hf.parse_hf_spec(str(spec))
            dataset = hf.load_hf_dataset(parsed, name=parsed.unsliced)
            return _slice(dataset, parsed.start, parsed.stop, str(spec).strip()) if parsed.sliced else dataset
        match = _SPEC.fullmatch(str(spec).strip())
        if match is not None and match["name"] in BUILTIN_DATASETS:
            dataset = BUILTIN_DATASETS.get(match["name"]).load()
            if match["start"] is None:
                return dataset
            start, stop = (int(match[part]) if match[part] else None for part in ("start", "stop"))
            return _slice(dataset, start, stop, str(spec).strip())
        if match is not None and ":" in match["name"] and match["name"].split(":")[0] + ":train" in BUILTIN_DATASETS:
            raise DataError(f"{spec}: unknown split; {_builtin_help()}")
    if not Path(spec).exists():
        raise DataError(f"{spec}: no such folder, and not a built-in dataset ({_builtin_help()})")
    return load_image_folder(spec, skip_bad=skip_bad, name=str(spec))


@dataclass(frozen=True)
class BuiltinDatasetStatus:
    """What ``synthaug datasets`` shows for one built-in dataset."""

    name: str
    size: int
    location: str


def describe_builtin_datasets() -> list[BuiltinDatasetStatus]:
    """Every built-in dataset with its size and where it is (or would come from)."""
    return [
        BuiltinDatasetStatus(entry.name, entry.size, entry.locate())
        for entry in (BUILTIN_DATASETS.get(key) for key in BUILTIN_DATASETS.keys())
    ]
