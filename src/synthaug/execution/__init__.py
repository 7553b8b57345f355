"""One way to run independent units of work: in this process, on local worker processes, or on Ray.

A study is a grid of training runs and a generation run is a set of image shards; neither unit
depends on another, so both are handed to an :class:`Executor` as a function and a list of
items. The executor runs ``fn(item)`` wherever it likes and yields ``(item, result)`` pairs
back to the driver in the order they finish. The driver is the only process that writes the
run's logs (``results.jsonl``, ``metadata.jsonl``), so where a unit ran never shows in the
files.

Two engines:

- ``local`` (:class:`~synthaug.execution.local.LocalExecutor`): ``workers`` processes on this
  machine (``workers=1`` runs every unit in this process, as synthaug always did). Each worker
  gets ``cores // workers`` torch threads so that the machine is used once, not oversubscribed
  (a study unit then runs with its config's own ``threads``, the same on every engine).
- ``ray`` (:class:`~synthaug.execution.ray_engine.RayExecutor`): Ray Core tasks on a cluster
  (``address="auto"`` for one started with ``ray start``, ``"local"`` for a private one on this
  machine, or ``"ray://HOST:10001"``); each unit asks for the :class:`Resources` it needs,
  fractional GPUs included. Ray is imported only when this engine is chosen
  (``pip install 'synthaug[ray]'``).

Faults: a worker process or a Ray node that dies costs the units it was running, which run
again elsewhere, up to ``max_retries`` times each; an exception raised by ``fn`` itself is a
bug or bad input and stops the run at once (retrying would fail the same way).

State that is expensive to build and the same for every unit (a study's datasets, a
generator's loaded pipeline) is kept per worker process with :func:`worker_state`, so it is
built once per process (once per Ray worker), not once per unit; what the driver already has
it hands over with :meth:`Executor.share` (sent once per worker; on Ray, once to the object
store).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from synthaug.errors import ConfigError
from synthaug.execution.rate import RateLimiter, Reserver

__all__ = [
    "Executor",
    "RateLimiter",
    "Reserver",
    "Resources",
    "available_cores",
    "make_executor",
    "worker_state",
]

Item = TypeVar("Item")
Result = TypeVar("Result")
T = TypeVar("T")

# Times a unit is run again after its worker process or node died before the unit is given up.
DEFAULT_MAX_RETRIES = 3


@dataclass(frozen=True)
class Resources:
    """What one unit needs while it runs (Ray reserves it; the local engine runs one unit per worker).

    Attributes:
        num_cpus: CPU cores per unit (Ray ``num_cpus``).
        num_gpus: GPUs per unit; a fraction shares one GPU between units (``0.25`` runs four
            small models on one GPU at a time).
    """

    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ConfigError(f"resources must be >= 0, got num_cpus={self.num_cpus}, num_gpus={self.num_gpus}")


class Executor(Protocol):
    """Runs ``fn`` over items and hands the results back as they finish.

    Attributes:
        parallelism: Units that run at the same time (workers, or the cluster's CPUs).
        in_process: Units run in the caller's process (so they may use its objects directly).
    """

    parallelism: int
    in_process: bool

    def map_unordered(
        self, fn: Callable[[Item], Result], items: Iterable[Item], resources: Resources | None = None
    ) -> Iterator[tuple[Item, Result]]:
        """Run ``fn(item)`` for every item, yielding ``(item, result)`` in the order units finish.

        ``fn`` and the items must be picklable (``fn`` a module-level function) unless
        ``in_process``. Items are taken from ``items`` only as workers become free. Closing the
        iterator early (an exception, ``Ctrl-C``) stops the units still running.

        Raises:
            ExecutionError: A unit's worker died more than ``max_retries`` times.
            Exception: Whatever ``fn`` raised, unchanged (nothing is retried).
        """
        ...

    def share(self, key: Hashable, value: Any) -> None:
        """Hand ``value`` to every worker once, where units find it with ``worker_state(key, ...)``
        (a study's datasets: sent, not loaded again by each worker). It stays until the
        executor closes."""
        ...

    def rate_limiter(self, per_second: float) -> Reserver:
        """A rate limit of ``per_second`` events kept by all units together (one API account):
        a shared limiter on Ray, each local worker's share otherwise (see :mod:`.rate`)."""
        ...

    def close(self) -> None:
        """Stop the workers (safe to call twice)."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc_info: object) -> None: ...


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def make_executor(
    workers: int | None = None, ray_address: str | None = None, max_retries: int = DEFAULT_MAX_RETRIES
) -> Executor:
    """The executor for a command line or config: Ray when ``ray_address`` is given, else local.

    Args:
        workers: Local worker processes; ``None`` means one per core, ``1`` runs in this process.
            Ignored with Ray (the cluster decides).
        ray_address: ``"auto"`` (a cluster started with ``ray start``), ``"local"`` (start a
            private one here), ``"HOST:PORT"`` or ``"ray://HOST:10001"``; ``None`` for the
            local engine.
        max_retries: Times a unit whose worker died is run again.

    Raises:
        ConfigError: ``workers`` < 1, or Ray is asked for but not installed.
    """
    if ray_address is not None:
        from synthaug.execution.ray_engine import RayExecutor

        return RayExecutor(ray_address, max_retries=max_retries)
    from synthaug.execution.local import LocalExecutor

    return LocalExecutor(workers, max_retries=max_retries)


_WORKER_STATE: dict[Hashable, Any] = {}


def worker_state(key: Hashable, build: Callable[[], T]) -> T:
    """``build()``, called once per process and key; later calls return the same object.

    A unit function calls it for what every unit of a run shares (the datasets of a study,
    a generator backend with its weights), so a worker builds it for its first unit only. The
    driver may store the value it already has with :func:`put_worker_state`, so that units
    run in its own process reuse it.
    """
    if key not in _WORKER_STATE:
        _WORKER_STATE[key] = build()
    return _WORKER_STATE[key]


def put_worker_state(key: Hashable, value: Any) -> None:
    """Store ``value`` under ``key`` for :func:`worker_state` in this process."""
    _WORKER_STATE[key] = value


def drop_worker_state(key: Hashable) -> None:
    """Forget ``key`` in this process (a finished run's datasets), calling ``close()`` if it has one."""
    value = _WORKER_STATE.pop(key, None)
    close = getattr(value, "close", None)
    if callable(close):
        close()
