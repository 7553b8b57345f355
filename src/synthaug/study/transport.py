"""How a unit's models and predictions reach the run folder when its worker cannot write there.

On this machine, or on a Ray cluster whose nodes all mount the run folder, a unit writes its
model and predictions straight into the study cache (``study/cache.py``) and hands back a
results row. Many Ray clusters share no file system, so before any unit runs the driver checks
with a probe file that the workers see the run folder and the cache
(:meth:`synthaug.execution.Executor.sees_folder`). Where they do not, or where
``execution.ray.storage`` is set, each unit works in a scratch cache on its own node and sends
back an :class:`UnitOutcome`: its results row and its prediction files by value, through Ray's
object store, which the driver writes into its cache. Trained models go to the storage URI
when one is set (and are found there again by later units and reruns), else they come back by
value too. Either way the run folder ends with the same results, and a rerun resumes from it.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthaug.execution import Executor
from synthaug.execution.transfer import FileBundle, FolderStorage
from synthaug.study.cache import StudyCache, content_key
from synthaug.study.records import UnitResult

__all__ = ["StoredModelsCache", "UnitOutcome", "pack_outcome", "relative_path", "scratch_cache", "unpack_outcome",
           "units_send_files"]  # fmt: skip


def relative_path(path: Path, run_dir: Path) -> str:
    """``path`` relative to the run folder where it lies inside it, else absolute (as results
    rows record it)."""
    try:
        return str(path.resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return str(path.resolve())


def units_send_files(executor: Executor, folders: list[Path], storage: str | None) -> bool:
    """Whether units must send their files back (``True``) rather than write the run folder.

    ``True`` when a storage is set, or when the workers do not see one of ``folders`` (checked
    with a probe file on every node; the folders are created here first).
    """
    if executor.in_process:
        return False
    if storage is not None:
        return True
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return not all(executor.sees_folder(folder) for folder in folders)


class StoredModelsCache(StudyCache):
    """A study cache on a worker's own disk whose models are also kept in a shared storage.

    A model is looked up locally, then in the storage (and copied here when found there); a
    model trained here is uploaded once saved. Predictions stay local: they travel back by value.

    Args:
        root: The scratch folder on this node.
        storage: Where models are kept (:class:`~synthaug.execution.transfer.FolderStorage`).
    """

    def __init__(self, root: str | Path, storage: FolderStorage) -> None:
        super().__init__(root)
        self.storage = storage

    def has_model(self, key: str) -> bool:
        if super().has_model(key):
            return True
        if not self.storage.has(f"models/{key}"):
            return False
        self.storage.download(f"models/{key}", self.model_dir(key))
        return True

    def save_model(self, key: str, description: Mapping[str, Any], save: Callable[[Path], None]) -> Path:
        final = super().save_model(key, description, save)
        if not self.storage.has(f"models/{key}"):
            self.storage.upload(final, f"models/{key}")
        return final


def scratch_cache(cache_root: str, storage: str | None) -> StudyCache:
    """This node's scratch cache for the units of the study whose cache is ``cache_root`` on
    the driver (one per study cache, kept between units so that units of this node share it)."""
    root = Path(tempfile.gettempdir()) / "synthaug-scratch" / content_key({"cache": cache_root})[:16]
    return StudyCache(root) if storage is None else StoredModelsCache(root, FolderStorage(storage))


@dataclass(frozen=True)
class UnitOutcome:
    """A unit's result as it travels back by value.

    Attributes:
        result: The results row, with paths in the worker's scratch cache.
        files: Its predictions (and model, when no storage keeps it, and a targeted unit's
            rounds), by path relative to the scratch cache.
        scratch_root: The scratch cache the paths of ``result`` point into.
        model_location: Where the model is kept when a storage keeps it, else ``None``.
    """

    result: UnitResult
    files: FileBundle
    scratch_root: str
    model_location: str | None


def pack_outcome(result: UnitResult, cache: StudyCache) -> UnitOutcome:
    """On the worker: ``result`` with the files the driver must keep, read from ``cache``."""
    storage = cache.storage if isinstance(cache, StoredModelsCache) else None
    paths = [Path(path) for path in result.predictions.values()]
    if result.targeted is not None:
        paths.append(Path(result.targeted))
    if storage is None:
        paths.append(cache.model_dir(result.model_key).resolve())
    return UnitOutcome(
        result=result,
        files=FileBundle.collect(cache.root.resolve(), paths),
        scratch_root=str(cache.root.resolve()),
        model_location=None if storage is None else storage.location(f"models/{result.model_key}"),
    )


def unpack_outcome(outcome: UnitOutcome, cache: StudyCache, run_dir: Path) -> UnitResult:
    """On the driver: write the outcome's files into ``cache`` and return its row with paths
    into this run folder (the model's: its storage location when a storage keeps it)."""
    outcome.files.write_into(cache.root)
    scratch = Path(outcome.scratch_root)

    def here(path: str) -> str:
        return relative_path(cache.root / Path(path).relative_to(scratch), run_dir)

    result = outcome.result
    return dataclasses.replace(
        result,
        model_dir=outcome.model_location or relative_path(cache.model_dir(result.model_key), run_dir),
        predictions={name: here(path) for name, path in result.predictions.items()},
        targeted=None if result.targeted is None else here(result.targeted),
    )
