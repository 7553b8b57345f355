"""The one dataset type every part of synthaug reads: images, class names and provenance.

An :class:`ImageDataset` is an ordered list of items; each item is an image plus an integer
label indexing :attr:`ImageDataset.classes`. The images live in one or more *sources*: an
in-memory uint8 array (Fashion-MNIST, scikit-learn digits, :meth:`ImageDataset.from_arrays`)
or image files on disk (image folders, generated datasets). Keeping the sources separate lets
real arrays and synthetic PNG folders be mixed (:func:`synthaug.data.concat_datasets`)
without re-encoding either, and keeps Fashion-MNIST fast: its pixels never pass through PIL
unless a resize or mode change asks for it.

Datasets are immutable: :meth:`~ImageDataset.subset`, :meth:`~ImageDataset.with_classes` and
friends return new datasets that share the sources.
"""

from __future__ import annotations

import hashlib
import json
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from synthaug.errors import ConfigError, DataError
from synthaug.fileio import sha256_file

CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}
"""Modes :meth:`ImageDataset.as_array` can produce, with their channel counts."""

_MODE_OF_CHANNELS = {channels: mode for mode, channels in CHANNELS.items()}

RESAMPLE = Image.Resampling.BILINEAR
"""Resize filter of :meth:`ImageDataset.as_array`: torchvision ``Resize``'s default for PIL
images (antialiased when shrinking, as Pillow's resize always is for this filter)."""

# Exceptions Pillow raises for files it cannot decode. Its plugins are not consistent, so the
# list is wider than OSError; anything else escaping a decode is a bug worth a traceback.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    struct.error,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)

# Damage found only when decoding (not by the quick check at load time) is not skipped by
# skip_bad, so the advice is to fix the folder; `synthaug datasets --check` finds all of it.
_DECODE_ADVICE = (
    "replace or remove the file and load the dataset again "
    "(`synthaug datasets --check FOLDER` lists every such file)"
)


def _describe_decode_error(error: BaseException) -> str:
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return (
            "image has more pixels than Pillow's decompression-bomb limit "
            f"(PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS}); shrink it"
        )
    if isinstance(error, Image.UnidentifiedImageError):
        return "not a readable image (unknown format or corrupt file)"
    return f"cannot decode the image, the file is corrupt or truncated ({error})"


def image_file_problem(path: Path, *, decode: bool = False) -> str | None:
    """Check that ``path`` is a readable image; cheaply unless ``decode``.

    The quick check makes sure the file is not empty, that Pillow recognises its format,
    that it is under Pillow's decompression-bomb limit, and runs Pillow's ``verify()``
    (which for PNG checks every chunk's CRC, so truncated PNGs are caught). Formats whose
    ``verify()`` is weaker (e.g. a truncated JPEG) are caught only with ``decode=True``,
    which decodes all pixels, or later when the image is used (:func:`decode_image_file`).

    Returns:
        ``None`` if the file passed, else a short reason.
    """
    try:
        if path.stat().st_size == 0:
            return "file is empty (0 bytes)"
        with warnings.catch_warnings():
            # Between 1x and 2x the limit Pillow only warns; we refuse both.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load() if decode else image.verify()
    except _DECODE_ERRORS as error:
        return _describe_decode_error(error)
    return None


def decode_image_file(path: Path) -> Image.Image:
    """Decode an image file fully into memory.

    Raises:
        DataError: naming the file, if it cannot be decoded.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return image
    except _DECODE_ERRORS as error:
        raise DataError(f"{path}: {_describe_decode_error(error)}; {_DECODE_ADVICE}") from error


def _convert(image: Image.Image, size: tuple[int, int] | None, mode: str) -> np.ndarray:
    """One PIL image -> uint8 ``(H, W, C)`` in ``mode``, resized to ``size = (H, W)``."""
    if image.mode != mode:
        image = image.convert(mode)
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), RESAMPLE)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[..., None] if pixels.ndim == 2 else pixels


@dataclass(frozen=True)
class ImageDecoder:
    """One PIL image -> uint8 tensor ``(C, H, W)``, converted and resized exactly as
    :meth:`ImageDataset.as_array` does (so streamed and in-memory pixels are equal).
    A plain picklable object, so DataLoader workers can run it."""

    size: tuple[int, int]  # (height, width)
    mode: str  # "L", "RGB" or "RGBA"

    def __call__(self, image: Image.Image) -> Any:
        import torch

        pixels = np.array(_convert(image, self.size, self.mode))  # writable: torch refuses read-only arrays
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


@dataclass(frozen=True, eq=False)
class _ArraySource:
    """Images held in memory as one read-only uint8 array ``(M, H, W, C)``."""

    pixels: np.ndarray
    name: str

    def image(self, position: int) -> Image.Image:
        pixels = self.pixels[position]
        return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)

    def file(self, position: int) -> Path | None:
        return None

    def record(self, position: int) -> dict[str, Any]:
        return {"file_name": None, "source": self.name, "index": int(position)}

    def as_array(self, positions: np.ndarray, size: tuple[int, int] | None, mode: str) -> np.ndarray:
        native_mode = _MODE_OF_CHANNELS[self.pixels.shape[-1]]
        if native_mode == "L" and mode == "RGB":
            # PIL's L -> RGB conversion copies the gray value into each channel, and resizing
            # treats channels alike, so resizing in L and copying after gives the same pixels
            # at a third of the cost.
            return np.repeat(self.as_array(positions, size, "L"), 3, axis=-1)
        if mode == native_mode and (size is None or size == self.pixels.shape[1:3]):
            if len(positions) == len(self.pixels) and np.array_equal(positions, np.arange(len(positions))):
                return self.pixels  # the whole source: no copy
            return self.pixels[positions]
        return np.stack([_convert(self.image(int(p)), size, mode) for p in positions])

    def update_hash(self, digest: Any, positions: np.ndarray) -> None:
        block = np.ascontiguousarray(self.pixels[positions])
        header = f"pixels{block.shape[1:]}".encode()
        for pixels in block:
            digest.update(header)
            digest.update(memoryview(pixels).cast("B"))


@dataclass(frozen=True, eq=False)
class _FileSource:
    """Images stored as files, decoded lazily; ``records`` are their manifest rows."""

    paths: tuple[Path, ...]
    records: tuple[dict[str, Any], ...]

    def image(self, position: int) -> Image.Image:
        return decode_image_file(self.paths[position])

    def file(self, position: int) -> Path | None:
        return self.paths[position]

    def record(self, position: int) -> dict[str, Any]:
        return dict(self.records[position])

    def as_array(self, positions: np.ndarray, size: tuple[int, int] | None, mode: str) -> np.ndarray:
        arrays = []
        for position in positions:
            pixels = _convert(self.image(int(position)), size, mode)
            if arrays and pixels.shape != arrays[0].shape:
                raise DataError(
                    f"{self.paths[position]}: image is {pixels.shape[1]}x{pixels.shape[0]} but "
                    f"{self.paths[positions[0]]} is {arrays[0].shape[1]}x{arrays[0].shape[0]}; "
                    "pass size=(H, W) to as_array to resize them to one size"
                )
            arrays.append(pixels)
        return np.stack(arrays)

    def update_hash(self, digest: Any, positions: np.ndarray) -> None:
        for position in positions:
            path = self.paths[position]
            try:
                digest.update(b"file")
                digest.update(bytes.fromhex(sha256_file(path)))  # the file's raw digest, read in blocks
            except OSError as error:
                raise DataError(f"{path}: cannot read the file ({error}); restore it") from error


_Source = _ArraySource | _FileSource


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _check_classes(classes: Sequence[str], where: str) -> list[str]:
    classes = list(classes)
    if not all(isinstance(name, str) and name for name in classes):
        raise DataError(f"{where}: class names must be non-empty strings, got {classes!r}")
    duplicates = sorted({name for name in classes if classes.count(name) > 1})
    if duplicates:
        raise DataError(f"{where}: class names must be unique, {duplicates} appear more than once")
    return classes


class ImageDataset:
    """An immutable labelled image dataset.

    It follows torch's map-style dataset protocol (``len(data)`` and ``data[i]``), so a
    ``torch.utils.data.DataLoader`` reads it, without subclassing torch's ``Dataset``: loading
    data then never imports torch (seconds of CLI start-up).

    Build one with :func:`synthaug.data.load_dataset`, :meth:`from_arrays` or
    :meth:`from_files`, not with the constructor.

    Attributes:
        classes: Class names; ``classes[k]`` is the name of label ``k``.
        targets: Integer labels, int64 ``(N,)``.
        name: Human-readable name, e.g. ``"fashion-mnist:train[50000:]"`` or a folder path.
        sample_weights: Per-item weights for a weighted training loss, float64 ``(N,)``;
            all ones unless set by :func:`synthaug.data.concat_datasets`.
        skipped: ``(file, reason)`` for every bad file skipped while loading with
            ``skip_bad=True`` (empty otherwise).
        root: The folder an image-folder dataset was loaded from, else ``None``.

    Indexing gives ``(PIL.Image.Image, int)``; :meth:`as_array` decodes everything at once.
    """

    def __init__(
        self,
        *,
        sources: Sequence[_Source],
        source_ids: np.ndarray,
        positions: np.ndarray,
        targets: np.ndarray,
        classes: Sequence[str],
        name: str,
        sample_weights: np.ndarray | None = None,
        skipped: Sequence[tuple[str, str]] = (),
        root: Path | None = None,
        arrays: dict[tuple[Any, str], np.ndarray] | None = None,
    ) -> None:
        self.classes = _check_classes(classes, name)
        self.targets = _read_only(np.asarray(targets, dtype=np.int64).copy())
        if len(self.targets) and (self.targets.min() < 0 or self.targets.max() >= len(self.classes)):
            raise DataError(
                f"{name}: labels must lie in [0, {len(self.classes)}) to index the "
                f"{len(self.classes)} classes, got values {self.targets.min()}..{self.targets.max()}"
            )
        self.name = name
        if sample_weights is None:
            sample_weights = np.ones(len(self.targets))
        self.sample_weights = _read_only(np.asarray(sample_weights, dtype=np.float64).copy())
        if self.sample_weights.shape != self.targets.shape:
            raise DataError(f"{name}: need one sample weight per image, got {self.sample_weights.shape}")
        self.skipped = list(skipped)
        self.root = root
        self._sources = tuple(sources)
        self._source_ids = np.asarray(source_ids, dtype=np.int64)
        self._positions = np.asarray(positions, dtype=np.int64)
        self._arrays = dict(arrays or {})  # memo of as_array, keyed by (size, mode)
        self._fingerprint: str | None = None
        self._records: list[dict[str, Any]] | None = None

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray,
        labels: Sequence[int] | np.ndarray,
        classes: Sequence[str],
        name: str = "arrays",
    ) -> ImageDataset:
        """An in-memory dataset from a uint8 array.

        Args:
            images: uint8 ``(N, H, W)`` (grayscale) or ``(N, H, W, C)`` with C = 1, 3 or 4
                (L, RGB, RGBA). Copied, so later changes to the caller's array do not leak in.
            labels: Integer labels ``(N,)`` indexing ``classes``.
            classes: Class names.
            name: Name of the dataset; records name it as their ``source``.
        """
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise DataError(f"{name}: images must be uint8 (0-255), got {images.dtype}; scale and cast them")
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in _MODE_OF_CHANNELS:
            raise DataError(
                f"{name}: images must have shape (N, H, W) or (N, H, W, C) with C in 1, 3, 4; "
                f"got {images.shape}"
            )
        labels = np.asarray(labels)
        if labels.shape != images.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(
                f"{name}: need one integer label per image, got labels of shape {labels.shape} "
                f"({labels.dtype}) for {len(images)} images"
            )
        source = _ArraySource(_read_only(np.array(images, copy=True)), name)
        return cls(
            sources=[source],
            source_ids=np.zeros(len(images), dtype=np.int64),
            positions=np.arange(len(images)),
            targets=labels,
            classes=classes,
            name=name,
        )

    @classmethod
    def from_files(
        cls,
        paths: Sequence[Path],
        labels: Sequence[int] | np.ndarray,
        classes: Sequence[str],
        records: Sequence[dict[str, Any]],
        name: str,
        *,
        root: Path | None = None,
        skipped: Sequence[tuple[str, str]] = (),
    ) -> ImageDataset:
        """A dataset of image files, decoded lazily. Files are not checked here.

        Args:
            paths: Image files, one per item.
            labels: Integer labels ``(N,)`` indexing ``classes``.
            classes: Class names.
            records: Per-item provenance (``file_name``, ``label``, ...), kept verbatim.
            name: Name of the dataset.
            root: Folder the files were found in.
            skipped: ``(file, reason)`` of bad files left out while loading.
        """
        if not len(paths) == len(labels) == len(records):
            raise DataError(f"{name}: need as many labels and records as files")
        source = _FileSource(tuple(Path(path) for path in paths), tuple(dict(r) for r in records))
        return cls(
            sources=[source],
            source_ids=np.zeros(len(paths), dtype=np.int64),
            positions=np.arange(len(paths)),
            targets=np.asarray(labels, dtype=np.int64),
            classes=classes,
            name=name,
            skipped=skipped,
            root=root,
        )

    def _replace(self, **changes: Any) -> ImageDataset:
        fields = dict(
            sources=self._sources,
            source_ids=self._source_ids,
            positions=self._positions,
            targets=self.targets,
            classes=self.classes,
            name=self.name,
            sample_weights=self.sample_weights,
            skipped=self.skipped,
            root=self.root,
            arrays=self._arrays,
        )
        fields.update(changes)
        return type(self)(**fields)

    # -- the torch Dataset protocol -----------------------------------------------------

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        """The image (as stored: ``L`` for grayscale arrays) and its integer label.

        Raises:
            DataError: naming the file, if an image file cannot be decoded.
        """
        source = self._sources[self._source_ids[index]]
        return source.image(int(self._positions[index])), int(self.targets[index])

    def __repr__(self) -> str:
        return f"ImageDataset(name={self.name!r}, size={len(self)}, classes={self.classes!r})"

    # -- whole-dataset views ------------------------------------------------------------

    @property
    def records(self) -> list[dict[str, Any]]:
        """Per-item provenance, one dict per image.

        Every record has ``file_name`` (path relative to the dataset root, ``None`` for
        in-memory images) and ``label`` (the class *name*, as in a Hugging Face
        ``metadata.jsonl``). Rows of a ``metadata.jsonl`` keep all their other fields
        (prompt, seed, backend, ...); in-memory images carry ``source`` and ``index``
        (their position in the array they came from).
        """
        if self._records is None:
            self._records = []
            for source_id, position, target in zip(self._source_ids, self._positions, self.targets):
                record = self._sources[source_id].record(int(position))
                record["label"] = self.classes[target]
                self._records.append(record)
        return self._records

    @property
    def files(self) -> list[Path | None]:
        """Per item, the image file it is read from, or ``None`` for in-memory images."""
        return [
            self._sources[source_id].file(int(position))
            for source_id, position in zip(self._source_ids, self._positions)
        ]

    @property
    def in_memory(self) -> bool:
        """Whether every image is held in an in-memory array (none is read from a file)."""
        used = np.unique(self._source_ids)
        return all(isinstance(self._sources[i], _ArraySource) for i in used)

    def class_counts(self) -> dict[str, int]:
        """Number of images per class name, in class order."""
        counts = np.bincount(self.targets, minlength=len(self.classes))
        return {name: int(count) for name, count in zip(self.classes, counts)}

    def as_array(self, size: tuple[int, int] | None = None, mode: str = "L") -> np.ndarray:
        """All images decoded into one array.

        Args:
            size: ``(height, width)`` to resize every image to (bilinear, antialiased), or
                ``None`` to keep the stored size (then all images must share one size).
            mode: ``"L"`` (grayscale), ``"RGB"`` or ``"RGBA"``; PIL's conversions are used.

        Returns:
            uint8 ``(N, H, W, C)`` with C = 1, 3 or 4. The result is memoised and shared, so
            it is read-only; copy it before changing it in place.

        Raises:
            DataError: if a file cannot be decoded, or sizes differ and ``size`` is None.
        """
        if mode not in CHANNELS:
            raise ConfigError(f"as_array mode must be one of {sorted(CHANNELS)}, got {mode!r}")
        if size is not None:
            size = (int(size[0]), int(size[1]))
            if min(size) < 1:
                raise ConfigError(f"as_array size must be (height, width) >= 1, got {size}")
        key = (size, mode)
        if key not in self._arrays:
            self._arrays[key] = _read_only(self._decode_all(size, mode))
        return self._arrays[key]

    def _decode_all(self, size: tuple[int, int] | None, mode: str) -> np.ndarray:
        if len(self) == 0:
            return np.zeros((0, *(size or (0, 0)), CHANNELS[mode]), dtype=np.uint8)
        if len(self._sources) == 1:
            return self._sources[0].as_array(self._positions, size, mode)
        blocks = {}
        for source_id, source in enumerate(self._sources):
            mask = self._source_ids == source_id
            if mask.any():
                blocks[source_id] = (mask, source.as_array(self._positions[mask], size, mode))
        shapes = {block.shape[1:] for _, block in blocks.values()}
        if len(shapes) > 1:
            raise DataError(
                f"{self.name}: its parts have different image shapes {sorted(shapes)}; "
                "pass size=(H, W) to as_array to resize them to one size"
            )
        result = np.empty((len(self), *shapes.pop()), dtype=np.uint8)
        for mask, block in blocks.values():
            result[mask] = block
        return result

    def fingerprint(self) -> str:
        """A sha256 hex digest of exactly these images (in order), labels and class names.

        In-memory images are hashed by their pixels, files by their bytes; non-uniform
        sample weights are included too. Two datasets with the same digest hold the same
        content, so caches (features, trained models) can use it as an address. The name
        is not part of it.
        """
        if self._fingerprint is None:
            digest = hashlib.sha256(b"synthaug.ImageDataset/v1\n")
            digest.update(json.dumps(self.classes).encode())
            digest.update(self.targets.astype("<i8").tobytes())
            if not np.all(self.sample_weights == 1.0):
                digest.update(b"weights")
                digest.update(self.sample_weights.astype("<f8").tobytes())
            # Items are hashed one by one (so how they are grouped into sources does not
            # matter), but a run of items from one source is handed over in one call.
            boundaries = np.flatnonzero(np.diff(self._source_ids)) + 1
            for run in np.split(np.arange(len(self)), boundaries):
                if len(run):
                    source = self._sources[self._source_ids[run[0]]]
                    source.update_hash(digest, self._positions[run])
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    # -- derived datasets ---------------------------------------------------------------

    def subset(self, indices: Sequence[int] | np.ndarray | slice, name: str | None = None) -> ImageDataset:
        """The items at ``indices``, in that order.

        Args:
            indices: Integer positions (negative counts from the end), a boolean mask of
                length N, or a slice.
            name: Name of the result; defaults to this dataset's name.
        """
        if isinstance(indices, slice):
            indices = np.arange(len(self))[indices]
        indices = np.asarray(indices)
        if indices.dtype == bool:
            if indices.shape != (len(self),):
                raise DataError(f"{self.name}: a boolean mask needs length {len(self)}, got {indices.shape}")
            indices = np.flatnonzero(indices)
        elif indices.size == 0:
            indices = indices.astype(np.int64)
        elif not np.issubdtype(indices.dtype, np.integer) or indices.ndim != 1:
            raise DataError(f"{self.name}: subset needs 1-D integer indices, got {indices.dtype} {indices.shape}")
        if indices.size and (indices.min() < -len(self) or indices.max() >= len(self)):
            raise DataError(f"{self.name}: subset indices must lie in [-{len(self)}, {len(self)})")
        return self._replace(
            source_ids=self._source_ids[indices],
            positions=self._positions[indices],
            targets=self.targets[indices],
            sample_weights=self.sample_weights[indices],
            name=self.name if name is None else name,
            arrays={key: _read_only(array[indices]) for key, array in self._arrays.items()},
        )

    def with_classes(self, classes: Sequence[str]) -> ImageDataset:
        """The same images with labels re-indexed to ``classes``, matched by name.

        ``classes`` may hold extra names (e.g. a test set with a class missing); every class
        of this dataset that has images must be among them (a class left without images,
        e.g. by a subset that removed a held-out class, may be dropped).

        Raises:
            DataError: naming the classes of this dataset missing from ``classes``.
        """
        classes = _check_classes(classes, "with_classes")
        present = {self.classes[label] for label in np.unique(self.targets)}
        missing = [name for name in self.classes if name not in classes and name in present]
        if missing:
            raise DataError(
                f"{self.name}: classes {missing} are not among the expected classes {classes}; "
                "check that the datasets use the same class names"
            )
        # Dropped classes have no images, so their placeholder index -1 is never looked up.
        new_index = np.array([classes.index(name) if name in classes else -1 for name in self.classes], dtype=np.int64)
        return self._replace(targets=new_index[self.targets], classes=classes)

    def with_sample_weights(self, sample_weights: np.ndarray) -> ImageDataset:
        """The same dataset with per-item weights ``sample_weights`` float ``(N,)``."""
        return self._replace(sample_weights=sample_weights)


def concat_datasets(datasets: Sequence[ImageDataset], weights: Sequence[float] | None = None) -> ImageDataset:
    """One dataset holding the items of ``datasets`` in order, e.g. real + synthetic images.

    All datasets must have the same set of class names; labels follow the first dataset's
    class order. Sources are shared, so arrays and image files can be mixed freely.

    Args:
        datasets: The datasets to join (at least one).
        weights: Optional per-dataset factor: every item of ``datasets[k]`` gets its sample
            weight multiplied by ``weights[k]`` (stored in ``sample_weights`` for a weighted
            training loss). To give dataset ``k`` a total share ``s`` of the loss, pass
            ``s / len(datasets[k])``.

    Raises:
        DataError: if the class names differ (naming the differing classes) or ``weights``
            is malformed.
    """
    datasets = list(datasets)
    if not datasets:
        raise DataError("concat_datasets needs at least one dataset")
    if weights is None:
        weights = [1.0] * len(datasets)
    weights = [float(weight) for weight in weights]
    if len(weights) != len(datasets) or not all(np.isfinite(w) and w >= 0 for w in weights):
        raise DataError(
            f"concat_datasets needs one finite weight >= 0 per dataset, got {weights} for {len(datasets)} datasets"
        )
    classes = datasets[0].classes
    for dataset in datasets[1:]:
        if set(dataset.classes) != set(classes):
            raise DataError(
                f"cannot concatenate {dataset.name} with {datasets[0].name}: classes only in the "
                f"first: {sorted(set(classes) - set(dataset.classes))}, only in the second: "
                f"{sorted(set(dataset.classes) - set(classes))}"
            )
    sources: list[_Source] = []
    source_index: dict[int, int] = {}  # id(source) -> index, so a shared source stays one
    source_ids, positions, targets, sample_weights, skipped = [], [], [], [], []
    for dataset, weight in zip(datasets, weights):
        dataset = dataset.with_classes(classes)
        for source in dataset._sources:
            if id(source) not in source_index:
                source_index[id(source)] = len(sources)
                sources.append(source)
        new_ids = np.array([source_index[id(source)] for source in dataset._sources], dtype=np.int64)
        source_ids.append(new_ids[dataset._source_ids])
        positions.append(dataset._positions)
        targets.append(dataset.targets)
        sample_weights.append(dataset.sample_weights * weight)
        skipped.extend(dataset.skipped)
    return ImageDataset(
        sources=sources,
        source_ids=np.concatenate(source_ids),
        positions=np.concatenate(positions),
        targets=np.concatenate(targets),
        classes=classes,
        name=" + ".join(dataset.name for dataset in datasets),
        sample_weights=np.concatenate(sample_weights),
        skipped=skipped,
    )
