"""The Ray engine: every unit is a Ray Core task that asks for the resources it needs.

Why tasks and not a pool of actors: Ray places each task on any node with free resources, so
nodes that join a running cluster are used at once, and a task lost with its worker process or
node is rescheduled by Ray itself (``max_retries``), on another node if need be. What actors
would add, state that outlives one unit, comes from :func:`synthaug.execution.worker_state`:
Ray reuses a worker process for many tasks of the same function (``max_calls=0``, which also
keeps GPU tasks' processes, whose Ray default is one task per process), so a generator's
pipeline or a study's datasets load once per worker process.

Every path a task receives is absolute, resolved by the driver: a Ray worker's working
directory is the one ``ray start`` ran in, not the driver's, so a relative ``run/`` would name
another folder there. Whether the workers see the driver's folders at all (a file system every
node mounts: NFS, EFS, a shared volume in KubeRay) is checked before any unit runs
(:meth:`RayExecutor.sees_folder`); where they do not, a study's units send their files back
through the object store (:mod:`synthaug.execution.transfer`) and generation refuses to start.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from synthaug.errors import ConfigError, ExecutionError
from synthaug.execution import DEFAULT_MAX_RETRIES, Reserver, Resources, put_worker_state, worker_state
from synthaug.execution.local import limit_threads

__all__ = ["RayExecutor", "nodes_not_reading"]

# Name of the probe file the driver writes into a folder to see whether the workers read it.
PROBE_PREFIX = ".synthaug-probe-"
# Seconds every node gets to answer the probe.
PROBE_TIMEOUT = 120.0

Item = TypeVar("Item")
Result = TypeVar("Result")


def _import_ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError as error:
        raise ConfigError("--ray needs the package 'ray'; install it with: pip install 'synthaug[ray]'") from error
    return ray


def _run_unit(fn: Callable[[Any], Any], item: Any, threads: int, shared: dict[Hashable, Any]) -> Any:
    """The body of every Ray task: ``fn(item)`` with torch limited to the task's CPUs, and the
    driver's shared values (object references, fetched once per worker process) in place."""
    import ray

    limit_threads(threads)
    for key, reference in shared.items():
        # Fetched once per process and object; a key shared again with a new value replaces it.
        put_worker_state(key, worker_state(("ray object", reference.hex()), lambda r=reference: ray.get(r)))
    return fn(item)


def _read_probe(path: str, token: str) -> bool:
    """On a worker: whether ``path`` holds ``token``; if so, answer in ``path + ".seen"`` (a
    file the driver then reads: both directions of the file system are checked)."""
    try:
        if Path(path).read_text(encoding="utf-8") != token:
            return False
        Path(f"{path}.seen-{os.getpid()}").write_text(token, encoding="utf-8")
    except OSError:
        return False
    return True


def nodes_not_reading(path: Path, token: str) -> list[str]:
    """Ids of the alive Ray nodes on which a task does not find ``token`` in the file ``path``,
    or whose answer beside it (``path.seen-PID``) this process cannot read.

    One task per node, pinned to it, so that a node without the shared mount is found even when
    the others have it. Answers are removed afterwards.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(_read_probe)
    nodes = [node["NodeID"] for node in ray.nodes() if node.get("Alive")]
    replies = [
        probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(str(path), token)
        for node in nodes
    ]
    # A node that cannot run the probe in time (busy with another job's tasks) counts as blind.
    ready, late = ray.wait(replies, num_returns=len(replies), timeout=PROBE_TIMEOUT)
    for reply in late:
        ray.cancel(reply, force=True)
    answered = set(ready)
    blind = [node for node, reply in zip(nodes, replies, strict=True) if reply not in answered or not ray.get(reply)]
    answers = list(path.parent.glob(f"{path.name}.seen-*"))
    seen = sum(answer.read_text(encoding="utf-8") == token for answer in answers)
    for answer in answers:
        answer.unlink(missing_ok=True)
    # A node that read the token but whose answer the driver cannot read writes elsewhere
    # (which node that was, the answers do not say).
    return blind if seen >= len(nodes) - len(blind) else nodes


class RayExecutor:
    """Runs units as Ray tasks on the cluster at ``address``.

    Args:
        address: ``"auto"`` (the cluster this machine belongs to, started with ``ray start``),
            ``"local"`` (start a private Ray on this machine), ``"HOST:PORT"`` of a head node
            or a Ray Client address ``"ray://HOST:10001"``. When Ray is already initialised in
            this process (a notebook, a test cluster), that connection is used as it is.
        max_retries: Times Ray reruns a task whose worker process or node died.

    Raises:
        ConfigError: Ray is not installed or no cluster answers at ``address``.
    """

    in_process = False

    def __init__(self, address: str = "auto", max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        ray = _import_ray()
        self.address = address
        self.max_retries = max_retries
        self._owns_connection = not ray.is_initialized()
        if self._owns_connection:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            except ConnectionError as error:
                raise ConfigError(
                    f"--ray {address}: no Ray cluster answers ({error}); start one with `ray start --head` "
                    "or give its address"
                ) from error
        self._remote = ray.remote(max_calls=0)(_run_unit)
        self._in_flight: dict[Any, Any] = {}
        self._shared: dict[Hashable, Any] = {}

    @property
    def parallelism(self) -> int:
        """CPUs of the cluster right now (grows as nodes join)."""
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r})"

    def map_unordered(
        self, fn: Callable[[Item], Result], items: Iterable[Item], resources: Resources | None = None
    ) -> Iterator[tuple[Item, Result]]:
        """See :meth:`synthaug.execution.Executor.map_unordered`. At most twice as many tasks as
        fit on the cluster are submitted at a time, so a long list does not flood the scheduler."""
        import ray

        resources = resources or Resources()
        task = self._remote.options(
            num_cpus=resources.num_cpus,
            num_gpus=resources.num_gpus,
            max_retries=self.max_retries,
            retry_exceptions=False,
        )
        threads = max(1, int(resources.num_cpus))
        fits = int(ray.cluster_resources().get("CPU", 1) // max(resources.num_cpus, 1e-9)) if resources.num_cpus else 64
        limit = max(2, 2 * fits)
        pending = iter(items)
        exhausted = False
        finished = False
        try:
            while True:
                while not exhausted and len(self._in_flight) < limit:
                    try:
                        item = next(pending)
                    except StopIteration:
                        exhausted = True
                        break
                    self._in_flight[task.remote(fn, item, threads, self._shared)] = item
                if not self._in_flight:
                    break
                done, _ = ray.wait(list(self._in_flight), num_returns=1)
                for reference in done:
                    item = self._in_flight.pop(reference)
                    yield item, self._result(reference, item)
            finished = True
        finally:
            if not finished:
                for reference in self._in_flight:
                    ray.cancel(reference, force=True)
                self._in_flight.clear()

    def sees_folder(self, folder: Path) -> bool:
        """Whether a task on every node of the cluster reads a file the driver writes into
        ``folder`` (which must exist), and the driver reads the file that task writes beside it."""
        path = folder / f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        token = uuid.uuid4().hex
        path.write_text(token, encoding="utf-8")
        try:
            return not nodes_not_reading(path, token)
        finally:
            path.unlink(missing_ok=True)

    def share(self, key: Hashable, value: Any) -> None:
        """Put ``value`` in the object store once; each worker process fetches it once."""
        import ray

        self._shared[key] = ray.put(value)

    def rate_limiter(self, per_second: float) -> Reserver:
        """One limiter actor that every task asks for its calls' slots."""
        from synthaug.execution.rate import shared_rate_limiter

        return shared_rate_limiter(per_second)

    def _result(self, reference: Any, item: Any) -> Any:
        import ray
        from ray.exceptions import RayError, RayTaskError

        try:
            return ray.get(reference)
        except RayTaskError as error:  # fn raised: hand the original exception back
            cause = error.cause if isinstance(error.cause, BaseException) else error
            raise cause from error
        except RayError as error:  # the worker or node died more than max_retries times
            raise ExecutionError(
                f"unit {item!r} was lost {self.max_retries + 1} times with its Ray worker or node "
                f"({type(error).__name__}); check the cluster (`ray status`) and rerun to resume"
            ) from error

    def close(self) -> None:
        """Cancel tasks still running; disconnect from a cluster this executor connected to."""
        import ray

        for reference in self._in_flight:
            ray.cancel(reference, force=True)
        self._in_flight.clear()
        self._shared.clear()
        if self._owns_connection and ray.is_initialized():
            ray.shutdown()
        self._owns_connection = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
