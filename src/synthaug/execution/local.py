"""The local engine: worker processes on this machine, one unit each at a time.

Why not :class:`concurrent.futures.ProcessPoolExecutor`: when one of its workers dies (the
kernel's OOM killer, ``kill -9``) the whole pool breaks and every unit in flight is lost with
it, and it cannot say which unit the dead worker was running. Here each worker has its own
pipe, so the driver knows what every worker is doing: a dead worker's unit is run again on a
fresh worker and the others carry on undisturbed.

Workers are started with ``spawn`` (a clean interpreter; forking a process that already holds
torch threads or a CUDA context is unsafe), ignore ``Ctrl-C`` (the driver stops them, so a
terminal's interrupt does not print one traceback per worker), limit torch to their share of
the cores, and exit when the driver closes their pipe or dies.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import traceback
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, TypeVar

from synthaug.errors import ConfigError, ExecutionError
from synthaug.execution import DEFAULT_MAX_RETRIES, RateLimiter, Resources, available_cores, put_worker_state

__all__ = ["LocalExecutor"]

Item = TypeVar("Item")
Result = TypeVar("Result")

# Seconds a worker gets to exit after its pipe is closed before it is terminated.
_STOP_TIMEOUT = 5.0


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, attached as its ``__cause__``."""

    def __str__(self) -> str:
        return str(self.args[0])


class LocalExecutor:
    """Runs units on ``workers`` local processes (``workers=1``: in this process).

    Args:
        workers: Worker processes; ``None`` means one per available core.
        max_retries: Times a unit is run again after its worker died.
        threads_per_worker: torch/BLAS threads of each worker; ``None`` means
            ``cores // workers`` (at least 1), so that workers x threads <= cores.

    Raises:
        ConfigError: ``workers`` is not a positive integer.
    """

    def __init__(
        self, workers: int | None = None, max_retries: int = DEFAULT_MAX_RETRIES, threads_per_worker: int | None = None
    ) -> None:
        cores = available_cores()
        workers = cores if workers is None else workers
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be a positive integer, got {workers!r}")
        self.workers = workers
        self.parallelism = workers
        self.in_process = workers == 1
        self.max_retries = max_retries
        self.threads_per_worker = threads_per_worker or max(1, cores // workers)
        self._context = multiprocessing.get_context("spawn")
        self._idle: list[_Worker] = []
        self._busy: dict[_Worker, tuple[Any, int]] = {}
        self._shared: dict[Hashable, Any] = {}

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers}, threads_per_worker={self.threads_per_worker})"

    def map_unordered(
        self, fn: Callable[[Item], Result], items: Iterable[Item], resources: Resources | None = None
    ) -> Iterator[tuple[Item, Result]]:
        """See :meth:`synthaug.execution.Executor.map_unordered` (``resources`` is not used here:
        each worker runs one unit at a time)."""
        if self.in_process:
            for item in items:
                yield item, fn(item)
            return
        yield from self._map(fn, items)

    def share(self, key: Hashable, value: Any) -> None:
        """Send ``value`` to each worker before its next unit (in this process: store it)."""
        if self.in_process:
            put_worker_state(key, value)
            return
        self._shared[key] = value
        for worker in [*self._idle, *self._busy]:
            worker.shared.discard(key)  # a new value for a key sent before goes out again

    def sees_folder(self, folder: Path) -> bool:
        """Always: the workers run on this machine (and are handed absolute paths)."""
        return True

    def rate_limiter(self, per_second: float) -> RateLimiter:
        """Each worker's share of the limit: workers run one unit at a time, so together they
        stay within ``per_second``."""
        return RateLimiter(per_second / self.workers)

    def worker_pids(self) -> dict[int, Any]:
        """``{pid: item}`` of the workers running a unit right now (for monitoring and tests)."""
        return {worker.process.pid: item for worker, (item, _) in self._busy.items() if worker.process.pid}

    def _map(self, fn: Callable[[Item], Result], items: Iterable[Item]) -> Iterator[tuple[Item, Result]]:
        pending = iter(items)
        retries: deque[tuple[Any, int]] = deque()
        exhausted = False
        finished = False
        try:
            while True:
                while len(self._busy) < self.workers:
                    if retries:
                        task = retries.popleft()
                    elif not exhausted:
                        try:
                            task = (next(pending), 0)
                        except StopIteration:
                            exhausted = True
                            continue
                    else:
                        break
                    self._start(fn, task)
                if not self._busy:
                    break
                ends = [end for worker in self._busy for end in (worker.connection, worker.process.sentinel)]
                ready = set(wait(ends))
                for worker in [w for w in self._busy if w.connection in ready or w.process.sentinel in ready]:
                    item, attempt = self._busy.pop(worker)
                    reply = worker.receive()
                    if reply is None:  # the worker died with the unit
                        worker.kill()
                        if attempt >= self.max_retries:
                            raise ExecutionError(
                                f"unit {item!r} was lost with its worker process {attempt + 1} times "
                                "(killed, or out of memory?); fix the cause and rerun to resume"
                            )
                        retries.append((item, attempt + 1))
                        continue
                    self._idle.append(worker)
                    ok, payload = reply
                    if not ok:
                        error, remote_traceback = payload
                        raise error from RemoteTraceback(remote_traceback)
                    yield item, payload
            finished = True
        finally:
            if not finished:  # an error, Ctrl-C or an abandoned iterator: stop the units in flight
                for worker in list(self._busy):
                    worker.kill()
                self._busy.clear()

    def _start(self, fn: Callable[[Any], Any], task: tuple[Any, int]) -> None:
        """Hand ``task`` to an idle (or new) worker; a worker found dead is replaced."""
        while True:
            worker = self._idle.pop() if self._idle else _Worker(self._context, self.threads_per_worker)
            if worker.process.is_alive():
                try:
                    for key in self._shared.keys() - worker.shared:
                        worker.connection.send(("share", key, self._shared[key]))
                        worker.shared.add(key)
                    worker.connection.send(("run", fn, task[0]))
                except (BrokenPipeError, ConnectionResetError, EOFError):
                    worker.kill()  # died while idle; costs no attempt
                    continue
                self._busy[worker] = task
                return
            worker.kill()

    def close(self) -> None:
        """Stop every worker: idle ones exit when their pipe closes, busy ones are terminated."""
        for worker in list(self._busy):
            worker.kill()
        self._busy.clear()
        for worker in self._idle:
            worker.stop()
        self._idle.clear()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Worker:
    """One worker process and the driver's end of its pipe."""

    def __init__(self, context: Any, threads: int) -> None:
        self.shared: set[Hashable] = set()  # keys of the values this worker has received
        self.connection, child_end = context.Pipe()
        # Daemonic: an executor that is never closed cannot keep the interpreter from exiting
        # (units do not start processes of their own).
        self.process = context.Process(
            target=_worker_main, args=(child_end, threads), name="synthaug-worker", daemon=True
        )
        self.process.start()
        child_end.close()

    def receive(self) -> tuple[bool, Any] | None:
        """The worker's reply, or ``None`` when it died without one."""
        try:
            if self.connection.poll():
                return self.connection.recv()
        except (EOFError, OSError):
            pass
        return None

    def stop(self) -> None:
        self.connection.close()
        self.process.join(_STOP_TIMEOUT)
        if self.process.is_alive():
            self.kill()

    def kill(self) -> None:
        self.connection.close()
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(_STOP_TIMEOUT)
        if self.process.is_alive():
            self.process.kill()
        self.process.join()


def _worker_main(connection: Connection, threads: int) -> None:
    """A worker's loop until the pipe closes: store ``("share", key, value)`` for
    :func:`~synthaug.execution.worker_state`; run ``("run", fn, item)`` and send back
    ``(True, result)`` or ``(False, (exception, traceback text))``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads(threads)
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        except BaseException as error:  # the unit could not be unpickled (e.g. a module missing here)
            _reply_error(connection, error)
            continue
        if message[0] == "share":
            put_worker_state(message[1], message[2])
            continue
        _, fn, item = message
        try:
            result = fn(item)
        except BaseException as error:
            _reply_error(connection, error)
            continue
        try:
            connection.send((True, result))
        except (EOFError, OSError):
            return
        except Exception as error:  # an unpicklable result
            _reply_error(connection, error)


def _reply_error(connection: Connection, error: BaseException) -> None:
    text = traceback.format_exc()
    try:
        connection.send((False, (error, text)))
    except (EOFError, OSError):
        return
    except Exception:  # the exception itself does not pickle: send its text
        connection.send((False, (RuntimeError(f"{type(error).__name__}: {error}"), text)))


def limit_threads(threads: int) -> None:
    """Limit torch, OpenMP and BLAS to ``threads`` threads in this process.

    The environment variables cover libraries imported later; torch, when already imported,
    is told directly.
    """
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
