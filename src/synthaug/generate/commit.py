"""Committing generated images: the one generate-and-commit loop of every run.

Each image is written atomically and its manifest row appended as one fsynced line (the
protocol of :mod:`synthaug.generate.manifest`); each refusal is appended to the refusals file.
The in-process runner commits into the folder's own ``metadata.jsonl`` and ``rejected.jsonl``,
a worker of a sharded run into its shard's files (:mod:`synthaug.generate.shards`), both
through :func:`generate_and_commit`, so both paths write the same rows.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import synthaug
from synthaug.generate.backends import GeneratedImage, GeneratorBackend, ImageRequest, RejectedRequest
from synthaug.generate.manifest import JsonlAppender, atomic_write_bytes, fsync_directory, utc_now

__all__ = ["Committer", "commit_image", "generate_and_commit", "rejection_row"]


def generate_and_commit(
    generator: GeneratorBackend,
    requests: list[ImageRequest],
    committer: Committer,
    on_refused: Callable[[ImageRequest], None] | None = None,
) -> float:
    """Send ``requests`` to the backend and commit every result as it arrives.

    Args:
        generator: The backend.
        requests: The slots to generate.
        committer: Where images and refusals go.
        on_refused: Called with each refused request as its refusal arrives (the in-process
            runner re-plans the slot; a shard worker leaves that to the driver).

    Returns:
        What the backend charged for these requests, images and refusals together.
    """
    cost = 0.0
    for result in generator.generate(requests):
        cost += result.cost_usd
        if isinstance(result, GeneratedImage):
            committer.submit(result)
        else:
            committer.reject(result)
            if on_refused is not None:
                on_refused(result.request)
    committer.drain()
    return cost


class Committer:
    """Commits images on one background thread, so that disk syncs overlap generation.

    One thread keeps the manifest a single appender in arrival order. After a failed write
    nothing more is committed (a torn row must stay the last line), and the error surfaces
    in the caller's thread at the next :meth:`submit` or :meth:`drain`. Leaving the ``with``
    block commits every image already received, even when the run is being interrupted.

    Args:
        root: The dataset folder the images go into.
        generator: The backend (its description is recorded in each row).
        prompt_options: Each request's drawn prompt options, recorded in its row.
        on_commit: Called with each row once it is durable (from the commit thread).
        manifest: The JSON-lines file the rows are appended to.
        rejected: The JSON-lines file refusals are appended to.
    """

    # Images waiting for the disk at most; bounds memory when the disk is slower than the model.
    max_pending = 64

    def __init__(
        self,
        root: Path,
        generator: GeneratorBackend,
        prompt_options: Callable[[ImageRequest], dict[str, Any]],
        on_commit: Callable[[dict[str, Any]], None],
        manifest: Path,
        rejected: Path,
    ) -> None:
        self.root = root
        self.generator_info = generator.describe()
        self.prompt_options = prompt_options
        self.on_commit = on_commit
        self.manifest = JsonlAppender(manifest)
        self.rejections = JsonlAppender(rejected)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthaug-commit")
        self._pending: deque[Future[None]] = deque()
        self._failed = threading.Event()

    def __enter__(self) -> Committer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._executor.shutdown(wait=True)
        self.manifest.close()
        self.rejections.close()

    def submit(self, result: GeneratedImage) -> None:
        """Queue an image for committing (blocks while :attr:`max_pending` images wait)."""
        while self._pending and (self._pending[0].done() or len(self._pending) >= self.max_pending):
            self._pending.popleft().result()
        self._pending.append(self._executor.submit(self._commit, result))

    def reject(self, result: RejectedRequest) -> None:
        """Record a refused request, so that its prompt is never sent again."""
        self.rejections.append(rejection_row(result))

    def drain(self) -> None:
        """Wait until every queued image is committed (re-raises a failed write)."""
        while self._pending:
            self._pending.popleft().result()

    def _commit(self, result: GeneratedImage) -> None:
        if self._failed.is_set():
            return
        try:
            row = commit_image(self.root, result, self.generator_info, self.prompt_options(result.request))
            self.manifest.append(row)
        except BaseException:
            self._failed.set()
            raise
        self.on_commit(row)


def rejection_row(result: RejectedRequest) -> dict[str, Any]:
    """The ``rejected.jsonl`` row of a refused request."""
    request = result.request
    return {
        "label": request.label,
        "index": request.index,
        "attempt": request.attempt,
        "seed": request.seed,
        "prompt": request.prompt,
        "code": result.code,
        "reason": result.reason,
        "cost_usd": float(result.cost_usd),
        "created": utc_now(),
    }


def commit_image(
    root: Path, result: GeneratedImage, generator_info: dict[str, Any], prompt_options: dict[str, Any]
) -> dict[str, Any]:
    """Write one image atomically and return its manifest row (appended by the caller)."""
    request = result.request
    file_name = f"{request.key}.png"
    path = root / file_name
    if not path.parent.exists():
        path.parent.mkdir()
        fsync_directory(root)  # the new class folder must survive a crash as well as its files
    buffer = io.BytesIO()
    result.image.save(buffer, format="PNG")
    data = buffer.getvalue()
    atomic_write_bytes(path, data)
    row = {
        "file_name": file_name,
        "label": request.label,
        "prompt": request.prompt,
        "revised_prompt": result.revised_prompt,
        "backend": generator_info.get("backend"),
        "model": generator_info.get("model"),
        "seed": request.seed,
        "index": request.index,
        "attempt": request.attempt,
        "params": dict(request.params),
        "prompt_options": prompt_options,
        "width": result.image.width,
        "height": result.image.height,
        "sha256": hashlib.sha256(data).hexdigest(),
        "created": utc_now(),
        "cost_usd": float(result.cost_usd),
        "synthaug_version": synthaug.__version__,
    }
    if request.init_image is not None:
        row["init_image"] = {
            "file_name": request.init_image.file_name,
            "sha256": request.init_image.sha256,
            "strength": request.strength,
            "variant": request.variant,
        }
    if result.extra:
        row["extra"] = result.extra
    return row
