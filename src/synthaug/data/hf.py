"""Hugging Face datasets as :class:`~synthaug.data.ImageDataset`: ``hf:NAME[:SPLIT][START:STOP]``.

Most public image-classification sets live on the Hugging Face Hub; users also keep their own
as a ``save_to_disk`` folder or as parquet files. All three open through the ``datasets``
library and are named the same way wherever synthaug takes a dataset (study ``real:``,
``test:``, ``val:``, OOD ``data:``; CLI ``--data``, ``--train``)::

    hf:uoft-cs/cifar10:train                 # a Hub dataset, one split
    hf:uoft-cs/cifar10:test[:1000]           # python-style slice, as for built-ins
    hf:uoft-cs/cifar100:train?label_column=coarse_label
    hf:/data/my-set                          # a save_to_disk folder (a Dataset or a DatasetDict)
    hf:/data/my-set:validation
    hf:parquet:/data/shards/*.parquet        # parquet files (a glob), one split "train"

The split may be left out when the dataset has only one. Options follow a ``?`` like a URL
query, because dataset names are plain strings everywhere in synthaug: ``image_column`` and
``label_column`` (found from the features when the dataset has exactly one ``Image`` and one
``ClassLabel`` column), and ``subset`` (a Hub dataset's configuration name).

Nothing is decoded up front. ``datasets`` keeps the rows in memory-mapped Arrow files (for
the Hub, in its own cache, ``HF_DATASETS_CACHE``); the :class:`HFImageSource` reads one row's
encoded image and decodes it when the item is asked for, so a DataLoader's workers decode in
parallel and a hundred thousand photos cost no more memory than ten. The labels are read from
their column at load time (one int per row). The fingerprint hashes each row's encoded image
bytes exactly as an image file's bytes are hashed, so caches key on content, and the same
PNG as a file or as a row has the same address.

Needs the ``hf`` extra: ``pip install "synthaug[hf]"``.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from PIL import Image

from synthaug.data.dataset import ImageDataset, _convert
from synthaug.errors import DataError

PREFIX = "hf:"
"""Dataset specs starting with this open through :func:`load_hf_dataset`."""

PARQUET = "parquet:"
"""After :data:`PREFIX`: a glob of parquet files instead of a Hub name or folder."""

OPTIONS = ("image_column", "label_column", "subset")
"""Keys allowed after ``?`` in a spec."""

# Rows read per Arrow call while hashing: large enough to amortise the call, small enough
# that a batch of full-size photos stays a few megabytes.
_HASH_BATCH = 256

_SLICE = re.compile(r"\[(?P<start>-?\d*):(?P<stop>-?\d*)\]$")
_SPLIT = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class HFSpec:
    """A parsed ``hf:`` dataset spec."""

    location: str
    """Hub name (``owner/name``), local folder, or parquet glob."""
    kind: str
    """``"hub"``, ``"disk"`` (a ``save_to_disk`` folder) or ``"parquet"``."""
    split: str | None = None
    """Split name; ``None``: the only one there is."""
    start: int | None = None
    """Slice start, as in ``[START:STOP]``."""
    stop: int | None = None
    """Slice stop."""
    sliced: bool = False
    """Whether the spec had a ``[START:STOP]`` part."""
    options: dict[str, str] = field(default_factory=dict)
    """``image_column``, ``label_column``, ``subset`` given after ``?``."""

    @property
    def unsliced(self) -> str:
        """The spec without its slice: the name of the whole split."""
        kind = PARQUET if self.kind == "parquet" else ""
        split = "" if self.split is None else f":{self.split}"
        query = "&".join(f"{key}={value}" for key, value in self.options.items())
        return f"{PREFIX}{kind}{self.location}{split}{'?' + query if query else ''}"


def is_hf_spec(spec: str) -> bool:
    """Whether ``spec`` names a Hugging Face dataset (``hf:...``)."""
    return spec.startswith(PREFIX)


def parse_hf_spec(spec: str) -> HFSpec:
    """Split ``hf:LOCATION[:SPLIT][START:STOP][?KEY=VALUE&...]`` into its parts.

    Raises:
        DataError: No location, or an unknown option.
    """
    body, _, query = spec.strip().removeprefix(PREFIX).partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise DataError(f"{spec}: unknown option {unknown[0]!r}; the options are {', '.join(OPTIONS)}")
    start = stop = None
    match = _SLICE.search(body)
    if match is not None:
        body = body[: match.start()]
        start, stop = (int(match[part]) if match[part] else None for part in ("start", "stop"))
    kind = "hub"
    if body.startswith(PARQUET):
        kind, body = "parquet", body.removeprefix(PARQUET)
    location, split = body, None
    head, colon, tail = body.rpartition(":")
    if colon and head and _SPLIT.fullmatch(tail):
        location, split = head, tail
    if not location:
        raise DataError(f"{spec}: name a dataset, e.g. hf:uoft-cs/cifar10:train, hf:/path/to/folder or "
                        "hf:parquet:/path/*.parquet")
    if kind == "hub" and (location.startswith(("/", ".", "~")) or Path(location).expanduser().exists()):
        kind = "disk"
    return HFSpec(location, kind, split, start, stop, match is not None, options)


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[Any]:
    """Import ``datasets`` with its progress bars off: only synthaug's CLI draws progress."""
    try:
        import datasets
    except ImportError as error:
        raise DataError('hf: datasets need the datasets package: pip install "synthaug[hf]"') from error
    enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield datasets
    finally:
        if enabled:
            datasets.enable_progress_bars()


def _choose_split(spec: HFSpec, available: Sequence[str], where: str) -> str:
    if spec.split is None:
        if len(available) == 1:
            return available[0]
        raise DataError(f"{where}: the dataset has splits {', '.join(available)}; name one, e.g. "
                        f"{PREFIX}{spec.location}:{available[0]}")
    if spec.split not in available:
        raise DataError(f"{where}: unknown split {spec.split!r}; the dataset has {', '.join(available)}")
    return spec.split


def _open_split(spec: HFSpec, where: str) -> Any:
    """The ``datasets.Dataset`` of the spec's split (memory-mapped; nothing decoded)."""
    with _quiet_datasets() as datasets:
        try:
            if spec.kind == "disk":
                folder = Path(spec.location).expanduser()
                if not folder.is_dir():
                    raise DataError(f"{where}: no such folder; give a folder written by save_to_disk")
                loaded = datasets.load_from_disk(str(folder))
                if isinstance(loaded, datasets.DatasetDict):
                    return loaded[_choose_split(spec, list(loaded), where)]
                _choose_split(spec, [str(loaded.split or "train")], where)  # a bare Dataset: one split
                return loaded
            if spec.kind == "parquet":
                files = sorted(glob.glob(os.path.expanduser(spec.location)))
                if not files:
                    raise DataError(f"{where}: no parquet files match {spec.location}")
                _choose_split(spec, ["train"], where)
                return datasets.load_dataset("parquet", data_files=files, split="train")
            subset = spec.options.get("subset")
            split = _choose_split(spec, datasets.get_dataset_split_names(spec.location, subset), where)
            return datasets.load_dataset(spec.location, subset, split=split)
        except (OSError, ValueError) as error:  # not found, offline, bad files, unknown config...
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DataError(f"{where}: cannot open it with the datasets library ({first_line})") from error


def _find_column(features: dict[str, Any], wanted: type, given: str | None, option: str, where: str) -> str:
    """The column holding a ``wanted`` feature (``Image`` or ``ClassLabel``), or the one named."""
    kind = wanted.__name__
    if given is not None:
        if given not in features:
            raise DataError(f"{where}: {option}={given!r} is not a column; the columns are {', '.join(features)}")
        return given
    found = [name for name, feature in features.items() if isinstance(feature, wanted)]
    if len(found) == 1:
        return found[0]
    columns = ", ".join(f"{name} ({type(feature).__name__})" for name, feature in features.items())
    if not found:
        raise DataError(f"{where}: no {kind} column among {columns}; name one with ?{option}=COLUMN")
    raise DataError(f"{where}: several {kind} columns ({', '.join(found)}); choose one with ?{option}={found[0]}")


def _labels(table: Any, column: str, feature: Any, datasets: Any, where: str) -> tuple[np.ndarray, list[str]]:
    """Integer labels ``(N,)`` and class names, from a ``ClassLabel`` or a string column."""
    values = table.select_columns([column]).with_format("arrow")[:][column]
    if isinstance(feature, datasets.ClassLabel):
        labels = values.to_numpy(zero_copy_only=False).astype(np.int64)
        if (labels < 0).any():
            raise DataError(f"{where}: {int((labels < 0).sum())} rows have no label (-1) in column {column!r}; "
                            "use a labelled split")
        return labels, list(feature.names)
    if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
        names = [str(value) for value in values.to_pylist()]
        classes = sorted(set(names))
        index = {name: label for label, name in enumerate(classes)}
        return np.array([index[name] for name in names], dtype=np.int64), classes
    raise DataError(f"{where}: label column {column!r} is {feature}, neither a ClassLabel nor strings; "
                    f"cast it with dataset.cast_column({column!r}, datasets.ClassLabel(names=[...]))")


@dataclass(frozen=True, eq=False)
class HFImageSource:
    """The image column of a ``datasets.Dataset``, one encoded row read and decoded per item.

    Implements the source protocol of :class:`~synthaug.data.ImageDataset` (``image``,
    ``file``, ``record``, ``as_array``, ``update_hash``), like its array and file sources.
    It pickles by reference to the memory-mapped Arrow files, so DataLoader workers share them.
    """

    rows: Any
    """``datasets.Dataset`` with only the image column, in ``"arrow"`` format."""
    column: str
    """The image column."""
    feature: Any
    """Its ``datasets.Image`` feature, which decodes a ``{"bytes", "path"}`` cell."""
    name: str
    """The dataset's name, for records and messages."""

    def _cells(self, positions: Sequence[int]) -> list[dict[str, Any]]:
        return self.rows[[int(position) for position in positions]][self.column].to_pylist()

    def image(self, position: int) -> Image.Image:
        (cell,) = self._cells([position])
        try:
            image = self.feature.decode_example(cell)
            image.load()
        except (OSError, ValueError, SyntaxError) as error:
            raise DataError(f"{self.name}: row {position}: cannot decode the image ({error}); "
                            "fix or drop that row") from error
        return image

    def file(self, position: int) -> Path | None:
        return None  # the images live inside the dataset's Arrow files

    def record(self, position: int) -> dict[str, Any]:
        return {"file_name": None, "source": self.name, "index": int(position)}

    def as_array(self, positions: np.ndarray, size: tuple[int, int] | None, mode: str) -> np.ndarray:
        arrays = [_convert(self.image(int(position)), size, mode) for position in positions]
        shapes = sorted({array.shape for array in arrays})
        if len(shapes) > 1:
            raise DataError(f"{self.name}: images have different sizes {shapes[:2]}; "
                            "pass size=(H, W) to as_array to resize them to one size")
        return np.stack(arrays)

    def update_hash(self, digest: Any, positions: np.ndarray) -> None:
        # As _FileSource hashes a file: b"file" + sha256 of the encoded image.
        for start in range(0, len(positions), _HASH_BATCH):
            for offset, cell in enumerate(self._cells(positions[start : start + _HASH_BATCH])):
                encoded = cell["bytes"]
                if encoded is None:
                    if cell["path"] is None or not Path(cell["path"]).is_file():
                        raise DataError(f"{self.name}: row {positions[start + offset]} has neither image bytes "
                                        f"nor a readable file ({cell['path']})")
                    encoded = Path(cell["path"]).read_bytes()
                digest.update(b"file")
                digest.update(hashlib.sha256(encoded).digest())


def load_hf_dataset(spec: HFSpec, name: str) -> ImageDataset:
    """Open the whole split a parsed ``hf:`` spec names (slicing is the caller's).

    Args:
        spec: From :func:`parse_hf_spec`.
        name: Name of the result, for messages and records.

    Raises:
        DataError: One line: the dataset cannot be opened, the split is unknown (listing the
            available ones), or no image / label column can be found.
    """
    table = _open_split(spec, name)
    with _quiet_datasets() as datasets:
        features = dict(table.features)
        image_column = _find_column(features, datasets.Image, spec.options.get("image_column"), "image_column", name)
        if not isinstance(features[image_column], datasets.Image):
            raise DataError(f"{name}: image_column={image_column!r} is {features[image_column]}, not an Image; "
                            f"cast it with dataset.cast_column({image_column!r}, datasets.Image())")
        label_column = _find_column(features, datasets.ClassLabel, spec.options.get("label_column"),
                                    "label_column", name)
        targets, classes = _labels(table, label_column, features[label_column], datasets, name)
        rows = table.select_columns([image_column]).with_format("arrow")
    source = HFImageSource(rows, image_column, features[image_column], name)
    return ImageDataset(sources=[source], source_ids=np.zeros(len(targets), dtype=np.int64),
                        positions=np.arange(len(targets)), targets=targets, classes=classes, name=name)
