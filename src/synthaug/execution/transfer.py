"""Files that cross from a worker to the driver when the two do not share a file system.

Many Ray clusters have no file system that every node mounts (a cloud cluster started with
``ray up``, KubeRay pods without a shared volume). A unit then works in a scratch folder on its
own node, and what the run must keep reaches the driver in one of two ways:

- by value, through Ray's object store: a :class:`FileBundle` (the files' bytes, by path under
  the scratch folder) is part of the unit's result, and the driver writes it under its own
  folder (a study's predictions, and its models when no storage is set);
- through a :class:`FolderStorage` that every node can reach, a path every node mounts or an
  object-store URI (``s3://bucket/prefix``, ``gs://...``), read and written with
  :mod:`pyarrow.fs`, as Ray Train's ``storage_path`` is (large models need not travel
  through the driver).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthaug.errors import ConfigError
from synthaug.fileio import atomic_write_bytes

__all__ = ["FileBundle", "FolderStorage"]

# Written last into a stored folder and read first: its presence marks the folder complete
# (the convention of the study cache's models, `study/cache.py`).
COMPLETE_MARKER = "key.json"


@dataclass(frozen=True)
class FileBundle:
    """Files by their path relative to a root, carried by value (pickled with a unit's result).

    Attributes:
        files: ``(relative path, bytes)`` pairs, in the order they are written back.
    """

    files: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def collect(cls, root: Path, paths: Iterable[Path]) -> FileBundle:
        """The files at ``paths`` (files, or folders taken whole) under ``root``; a folder's
        ``key.json`` goes last, so that an interrupted write-back never looks complete."""
        files: list[tuple[str, bytes]] = []
        for path in paths:
            members = [path]
            if path.is_dir():
                members = sorted(path.rglob("*"), key=lambda member: (member.name == COMPLETE_MARKER, str(member)))
            files.extend(
                (member.relative_to(root).as_posix(), member.read_bytes()) for member in members if member.is_file()
            )
        return cls(tuple(files))

    @property
    def size(self) -> int:
        """Bytes carried."""
        return sum(len(data) for _, data in self.files)

    def write_into(self, root: Path) -> None:
        """Write every file under ``root`` (each one atomically; an existing file is replaced
        by the same content, as every path is content-addressed by its producer)."""
        for relative, data in self.files:
            target = root / relative
            if root.resolve() not in target.resolve().parents:
                raise ConfigError(f"{relative}: a returned file must lie under {root}")
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, data, durable=False)


class FolderStorage:
    """Folders kept where every node can reach them: a local or mounted path, or a URI.

    Args:
        uri: ``s3://bucket/prefix``, ``gs://bucket/prefix``, ``hdfs://...`` (any file system
            :func:`pyarrow.fs.FileSystem.from_uri` knows, with its usual credentials from the
            environment), or a path. A relative path must be resolved by the driver before the
            storage is handed to workers (their working directory differs): see :meth:`resolved`.

    Raises:
        ConfigError: ``pyarrow`` is missing or the URI names an unknown file system.
    """

    def __init__(self, uri: str) -> None:
        try:
            from pyarrow import fs
        except ModuleNotFoundError as error:
            raise ConfigError(
                f"storage {uri}: needs the package 'pyarrow'; install it with: pip install 'synthaug[ray]'"
            ) from error
        self.uri = uri
        self._fs: Any
        if "://" in uri:
            try:
                self._fs, self._base = fs.FileSystem.from_uri(uri)
            except (OSError, ValueError) as error:
                raise ConfigError(f"storage {uri}: not a file system pyarrow can open ({error})") from error
        else:
            self._fs, self._base = fs.LocalFileSystem(), str(Path(uri).absolute())

    @staticmethod
    def resolved(uri: str) -> str:
        """``uri`` with a relative path made absolute against this process's working directory."""
        return uri if "://" in uri else str(Path(uri).expanduser().absolute())

    def location(self, name: str) -> str:
        """Where the folder ``name`` is stored (for records and messages)."""
        return f"{self.uri.rstrip('/')}/{name}"

    def has(self, name: str) -> bool:
        """Whether a complete folder ``name`` (its ``key.json`` written) is stored."""
        from pyarrow import fs

        return self._fs.get_file_info(f"{self._base}/{name}/{COMPLETE_MARKER}").type == fs.FileType.File

    def upload(self, folder: Path, name: str) -> None:
        """Store the files of ``folder`` as ``name``, its ``key.json`` last."""
        bundle = FileBundle.collect(folder, [folder])
        for relative, data in bundle.files:
            target = f"{self._base}/{name}/{relative}"
            self._fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with self._fs.open_output_stream(target) as stream:
                stream.write(data)

    def download(self, name: str, folder: Path) -> None:
        """Copy the stored folder ``name`` to ``folder`` (through a staging folder renamed into
        place, so that a reader never sees a half-copied one)."""
        from pyarrow import fs

        staging = folder.with_name(f".{folder.name}.download-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        fs.copy_files(f"{self._base}/{name}", str(staging), source_filesystem=self._fs,
                      destination_filesystem=fs.LocalFileSystem())  # fmt: skip
        if folder.exists():  # another unit of this node fetched it first
            shutil.rmtree(staging)
        else:
            os.replace(staging, folder)
