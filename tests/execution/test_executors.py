"""The execution layer: both engines run every unit once, hand back fn's errors unchanged,
and survive a worker process or a Ray node that dies mid-run."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from synthaug.errors import ConfigError, ExecutionError
from synthaug.execution import Resources, make_executor
from synthaug.execution.local import LocalExecutor

from helpers import workloads


def test_one_worker_runs_in_this_process():
    with make_executor(workers=1) as executor:
        assert executor.in_process
        results = dict(executor.map_unordered(workloads.pid_of, range(3)))
    assert results == {0: (0, os.getpid()), 1: (1, os.getpid()), 2: (2, os.getpid())}


@pytest.mark.slow
def test_two_workers_run_every_unit_once_in_other_processes():
    with LocalExecutor(workers=2) as executor:
        assert executor.threads_per_worker == max(1, len(os.sched_getaffinity(0)) // 2)
        results = list(executor.map_unordered(workloads.pid_of, range(6)))
        threads = {result for _, result in executor.map_unordered(workloads.torch_threads, range(2))}
    assert sorted(item for item, _ in results) == list(range(6))
    pids = {pid for _, (_, pid) in results}
    assert os.getpid() not in pids and len(pids) == 2  # both workers took units; the pool was reused
    assert threads == {executor.threads_per_worker}


def test_state_is_built_once_per_worker_process():
    with LocalExecutor(workers=2) as executor:
        results = [result for _, result in executor.map_unordered(workloads.built_once, range(8))]
    per_pid = {}
    for _, pid, stamp in results:
        per_pid.setdefault(pid, set()).add(stamp)
    assert all(len(stamps) == 1 for stamps in per_pid.values())


def test_a_shared_value_reaches_every_worker_once():
    with LocalExecutor(workers=2) as executor:
        executor.share(("tests", "shared"), {"pool": list(range(1000))})
        results = [result for _, result in executor.map_unordered(workloads.shared_value, range(4))]
    assert results == [{"pool": list(range(1000))}] * 4


def test_an_error_in_a_unit_stops_the_run_unchanged():
    with LocalExecutor(workers=2) as executor:
        with pytest.raises(ConfigError, match="unit 3: bad input") as caught:
            list(executor.map_unordered(workloads.refuse_three, range(6)))
        assert "refuse_three" in str(caught.value.__cause__)  # the worker's traceback
        assert executor.worker_pids() == {}  # nothing left running
        assert sorted(item for item, _ in executor.map_unordered(workloads.square, range(4))) == [0, 1, 2, 3]


def test_bad_worker_counts_are_refused():
    with pytest.raises(ConfigError, match="workers must be a positive integer"):
        make_executor(workers=0)


def _kill_first_started(folder: Path, killed: list[int]) -> None:
    """Wait for a unit to start, then kill -9 the worker process running it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        started = [path for path in folder.iterdir() if path.suffix == ""]
        if started:
            pid = int(started[0].name.split("-")[1])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.01)


@pytest.mark.slow
def test_a_killed_worker_costs_only_its_unit(tmp_path):
    items = [(value, str(tmp_path), 0.6) for value in range(6)]
    killed: list[int] = []
    killer = threading.Thread(target=_kill_first_started, args=(tmp_path, killed))
    killer.start()
    with LocalExecutor(workers=2) as executor:
        results = list(executor.map_unordered(workloads.slow_unit, items))
    killer.join()
    values = sorted(item[0] for item, _ in results)
    assert values == list(range(6))  # nothing lost, nothing duplicated
    assert killed and all(pid != killed[0] for _, (_, pid) in results)
    started = [path.name for path in tmp_path.iterdir() if path.suffix == ""]
    assert len(started) == 7  # six units, the killed one started twice
    [killed_unit] = [name for name in started if name.endswith(f"-{killed[0]}")]
    assert not (tmp_path / f"{killed_unit}.done").exists()  # it really died mid-unit


def test_a_unit_whose_worker_keeps_dying_is_given_up(tmp_path):
    def killer() -> None:
        deadline = time.monotonic() + 60
        seen: set[str] = set()
        while time.monotonic() < deadline and len(seen) < 2:
            for path in tmp_path.iterdir():
                if path.suffix == "" and path.name not in seen:
                    seen.add(path.name)
                    os.kill(int(path.name.split("-")[1]), signal.SIGKILL)
            time.sleep(0.01)

    thread = threading.Thread(target=killer)
    thread.start()
    with (
        LocalExecutor(workers=2, max_retries=1) as executor,
        pytest.raises(ExecutionError, match=r"lost with its worker process 2 times"),
    ):
        list(executor.map_unordered(workloads.slow_unit, [(0, str(tmp_path), 5.0)]))
    thread.join()


# --- Ray ----------------------------------------------------------------------------------


def test_ray_runs_every_unit_once_and_hands_errors_back(ray_cluster):
    with make_executor(ray_address="auto") as executor:
        assert not executor.in_process and executor.parallelism == 2
        results = dict(executor.map_unordered(workloads.square, range(10), Resources(num_cpus=1)))
        assert results == {value: value * value for value in range(10)}
        with pytest.raises(ConfigError, match="unit 3: bad input"):
            list(executor.map_unordered(workloads.refuse_three, range(6), Resources(num_cpus=0.5)))


def test_ray_hands_a_shared_value_to_every_task(ray_cluster):
    with make_executor(ray_address="auto") as executor:
        executor.share(("tests", "shared"), {"pool": [1, 2, 3]})
        results = [result for _, result in executor.map_unordered(workloads.shared_value, range(4))]
    assert results == [{"pool": [1, 2, 3]}] * 4


def test_ray_builds_shared_state_once_per_worker_process(ray_cluster):
    with make_executor(ray_address="auto") as executor:
        results = [result for _, result in executor.map_unordered(workloads.built_once, range(8))]
    per_pid: dict[int, set[int]] = {}
    for _, pid, stamp in results:
        per_pid.setdefault(pid, set()).add(stamp)
    assert all(len(stamps) == 1 for stamps in per_pid.values())
    assert len(per_pid) < 8  # processes are reused across tasks


def test_a_dead_ray_node_costs_only_its_units(ray_cluster, tmp_path):
    """Remove the second node while a unit runs on it; Ray reruns that unit on the head node."""
    [worker_node] = list(ray_cluster.worker_nodes)
    items = [(value, str(tmp_path), 1.5) for value in range(6)]
    removed = threading.Event()

    def running() -> list[str]:
        return [p.name for p in tmp_path.iterdir() if p.suffix == "" and not p.with_suffix(".done").exists()]

    def remove_node_once_both_run() -> None:
        # Each node has one CPU: two units running at once means one runs on the second node.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(running()) < 2:
            time.sleep(0.02)
        if len(running()) >= 2:
            ray_cluster.remove_node(worker_node)
            removed.set()

    thread = threading.Thread(target=remove_node_once_both_run)
    thread.start()
    try:
        with make_executor(ray_address="auto") as executor:
            results = list(executor.map_unordered(workloads.slow_unit, items, Resources(num_cpus=1)))
    finally:
        thread.join()
        if removed.is_set():
            with pytest.MonkeyPatch.context() as patch:  # back to two nodes for the tests after this one
                for name, value in ray_cluster.environment.items():
                    patch.setenv(name, value)
                ray_cluster.add_node(num_cpus=1)
                ray_cluster.wait_for_nodes()
    assert removed.is_set(), "the cluster never ran two units at once"
    assert sorted(item[0] for item, _ in results) == list(range(6))  # nothing lost, nothing duplicated
    started = [path.name for path in tmp_path.iterdir() if path.suffix == ""]
    assert len(started) > 6  # the unit on the removed node started again


def test_rate_limiter_books_wall_clock_slots_one_interval_apart() -> None:
    """Slots are absolute times, so a caller in another process can wait for its own slot
    however long the answer took to reach it (the Ray limiter)."""
    from synthaug.execution.rate import RateLimiter

    limiter = RateLimiter(per_second=10)
    before = time.time()
    slots = [limiter.reserve_at() for _ in range(4)]
    assert before <= slots[0] <= time.time()
    assert [later - earlier for earlier, later in zip(slots, slots[1:])] == pytest.approx([0.1] * 3)
    # The next reservation, as a delay, is the rest of the wait for the fifth slot.
    assert limiter.reserve() == pytest.approx(slots[0] + 0.4 - time.time(), abs=0.02)
