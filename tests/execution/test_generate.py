"""Generation through the execution layer: shards on other processes or Ray workers give the
same folder as one process, survive a killed worker or driver, pay for nothing twice and
record each refusal once."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from synthaug.execution import make_executor
from synthaug.execution.local import LocalExecutor
from synthaug.generate import generate_dataset
from synthaug.generate.prompts import PromptSpec

from helpers.fake_openai_server import FAST_RETRIES, REFUSAL_MARKER

CLASSES = ["T-shirt/top", "Trouser", "Ankle boot"]


def run(out: Path, executor, per_class: int = 4, classes=CLASSES, **kwargs):
    options = {**FAST_RETRIES, "concurrency": 2, **kwargs.pop("backend_options", {})}
    return generate_dataset(
        out, classes, per_class, backend="openai", model="dall-e-2", params={"size": "256x256"},
        backend_options=options, executor=executor, **kwargs,
    )  # fmt: skip


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]


def assert_complete(out: Path, per_class: int, classes=CLASSES) -> list[dict]:
    """Exactly ``per_class`` committed images per class, every row matching its file, no shard left."""
    found = rows(out)
    assert len({row["file_name"] for row in found}) == len(found) == per_class * len(classes)
    for row in found:
        assert hashlib.sha256((out / row["file_name"]).read_bytes()).hexdigest() == row["sha256"]
    assert sorted(row["label"] for row in found) == sorted(classes * per_class)
    assert not (out / ".manifests").exists() and not list(out.rglob(".synthaug-*.tmp"))
    return found


def comparable(found: list[dict]) -> list[tuple]:
    return sorted((row["file_name"], row["label"], row["seed"], row["prompt"], row["sha256"]) for row in found)


@pytest.mark.slow
def test_two_workers_give_the_same_folder_as_one_process(openai_env, tmp_path):
    one = run(tmp_path / "one", make_executor(workers=1))
    events = []
    with LocalExecutor(workers=2) as executor:
        two = run(tmp_path / "two", executor, progress=events.append)
    assert one["generated"] == two["generated"] == 12 and two["cost_usd"] == one["cost_usd"] > 0
    assert comparable(assert_complete(tmp_path / "one", 4)) == comparable(assert_complete(tmp_path / "two", 4))
    assert openai_env.images_served == 24  # twelve each: nothing paid twice
    assert events[0].done == 0 and events[-1].finished and events[-1].done == events[-1].total == 12


@pytest.mark.slow
def test_refusals_are_recorded_once_and_retried_with_the_next_variant(openai_env, tmp_path):
    spec = PromptSpec(templates=(f"a {REFUSAL_MARKER} photo of a {{label}}", "a photo of a {label}"))
    with LocalExecutor(workers=2) as executor:
        summary = run(tmp_path / "out", executor, prompt=spec, per_class=3)
    assert_complete(tmp_path / "out", 3)
    refused = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    keys = [(row["label"], row["index"], row["attempt"]) for row in refused]
    assert len(keys) == len(set(keys)) == summary["rejected"] > 0
    assert all(REFUSAL_MARKER not in row["prompt"] for row in rows(tmp_path / "out"))


@pytest.mark.slow
def test_the_cost_cap_is_kept_across_workers(openai_env, tmp_path):
    # dall-e-2 at 256x256 costs $0.016 an image: $0.10 buys six.
    with LocalExecutor(workers=2) as executor:
        summary = run(tmp_path / "out", executor, max_cost=0.10)
    assert summary["generated"] == 6 and summary["stopped_by_max_cost"]
    assert summary["total_cost_usd"] <= 0.10 and openai_env.images_served == 6


def _shard_files(out: Path) -> list[Path]:
    """The per-worker manifests a sharded run commits to before they are merged."""
    return list((out / ".manifests").glob("*.jsonl")) if (out / ".manifests").exists() else []


def _wait_for_shard_rows(out: Path, rows: int, timeout: float = 60.0) -> None:
    """Return once the workers have committed ``rows`` images (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(path.read_text().count("\n") for path in _shard_files(out)) >= rows:
            return
        time.sleep(0.01)


def _kill_a_worker_once_it_committed(out: Path, executor: LocalExecutor, killed: list[int]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(path.stat().st_size for path in _shard_files(out)) and executor.worker_pids():
            pid = next(iter(executor.worker_pids()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.01)


@pytest.mark.slow
def test_a_killed_worker_costs_only_its_calls_in_flight(openai_env, tmp_path):
    openai_env.latency = 0.1
    out = tmp_path / "out"
    killed: list[int] = []
    with LocalExecutor(workers=2) as executor:
        killer = threading.Thread(target=_kill_a_worker_once_it_committed, args=(out, executor, killed))
        killer.start()
        summary = run(out, executor, per_class=8)
        killer.join()
    assert killed
    assert_complete(out, 8)
    assert summary["generated"] == 24
    # Paid and lost with the worker: its calls in flight (concurrency 2) and the answers it had
    # not written yet (the same loss as killing a single process).
    assert 24 <= openai_env.images_served <= 24 + 4


_DRIVER = """
import signal
import sys
# Ctrl-C's default action, as a terminal starts a program: a process started in the background
# by a non-interactive shell (a CI runner's `cmd &`) inherits SIGINT ignored, and so would this.
signal.signal(signal.SIGINT, signal.default_int_handler)
from helpers.fake_openai_server import FAST_RETRIES
from synthaug.execution.local import LocalExecutor
from synthaug.generate import generate_dataset
if __name__ == "__main__":
    with LocalExecutor(workers=2) as executor:
        generate_dataset(sys.argv[1], ["Trouser", "Bag"], 12, backend="openai", model="dall-e-2",
                         params={"size": "256x256"}, backend_options={**FAST_RETRIES, "concurrency": 2},
                         executor=executor)
"""


@pytest.mark.slow
def test_a_killed_driver_leaves_shards_that_the_rerun_merges_without_paying_again(openai_env, tmp_path):
    """kill -9 the driver and its workers mid-run (a machine crash); the rerun merges the shard
    manifests they left and generates only what no shard committed."""
    openai_env.latency = 0.1
    out = tmp_path / "out"
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, str(script), str(out)], env=environment, start_new_session=True)
    _wait_for_shard_rows(out, 4)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    time.sleep(0.3)  # let the server finish the calls that were in flight
    served_before = openai_env.images_served
    openai_env.latency = 0.0
    plan = run(out, make_executor(workers=1), per_class=12, classes=["Trouser", "Bag"], dry_run=True)
    summary = run(out, make_executor(workers=1), per_class=12, classes=["Trouser", "Bag"])
    assert plan["existing"] == summary["reused"]  # a dry run counts the shards a rerun will merge
    assert summary["reused"] >= 4 and summary["reused"] + summary["generated"] == 24
    assert openai_env.images_served - served_before == summary["generated"]  # nothing committed is paid again
    # Lost with the kill, per worker: its calls in flight (2) and an answer not yet on disk.
    assert served_before - summary["reused"] <= 2 * (2 + 1)
    assert_complete(out, 12, classes=["Trouser", "Bag"])


def test_ray_workers_give_the_same_folder(openai_env, ray_cluster, tmp_path):
    one = run(tmp_path / "one", make_executor(workers=1))
    with make_executor(ray_address="auto") as executor:
        on_ray = run(tmp_path / "ray", executor)
    assert on_ray["generated"] == one["generated"] == 12
    assert comparable(assert_complete(tmp_path / "one", 4)) == comparable(assert_complete(tmp_path / "ray", 4))
    assert openai_env.images_served == 24


@pytest.mark.slow
def test_local_backends_give_the_same_pixels_on_workers(tmp_path):
    """The embedded ddpm generator: every slot's pixels depend only on its seed, not on the worker."""
    kwargs = {"backend": "ddpm", "params": {"size": "28x28", "steps": 4}}
    generate_dataset(tmp_path / "one", ["Trouser", "Bag"], 3, **kwargs)
    with LocalExecutor(workers=2) as executor:
        generate_dataset(tmp_path / "two", ["Trouser", "Bag"], 3, executor=executor, **kwargs)
    assert comparable(assert_complete(tmp_path / "one", 3, ["Trouser", "Bag"])) == comparable(
        assert_complete(tmp_path / "two", 3, ["Trouser", "Bag"])
    )


@pytest.mark.slow
def test_workers_share_the_accounts_rate_limit(openai_env, tmp_path):
    """600 images a minute is one call per 0.1 s for the whole run, however many workers."""
    started = time.monotonic()
    with LocalExecutor(workers=2) as executor:
        summary = run(tmp_path / "out", executor, per_class=4, backend_options={"images_per_minute": 600})
    elapsed = time.monotonic() - started
    assert summary["generated"] == 12
    # Two workers with 5 calls/s each: the 12 calls need at least (6 - 1) / 5 s per worker.
    starts = sorted(openai_env.call_times)
    assert len(starts) == 12 and starts[-1] - starts[0] >= 0.9 and elapsed >= 1.0


def test_ray_workers_share_one_rate_limiter_actor(openai_env, ray_cluster, tmp_path):
    with make_executor(ray_address="auto") as executor:
        run(tmp_path / "out", executor, per_class=4, backend_options={"images_per_minute": 600})
    starts = sorted(openai_env.call_times)
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    # One limiter for the cluster: slots 0.1 s apart in total (11 gaps: 1.1 s). A limiter per
    # worker would let the two workers call in pairs: about six near-zero gaps and a span of
    # about 0.5 s. The arrival times carry the scheduling jitter of a loaded machine (tens of
    # milliseconds), hence the margins.
    assert len(starts) == 12
    assert starts[-1] - starts[0] >= 0.85, gaps
    assert sum(gap < 0.03 for gap in gaps) <= 2, gaps


def _group_ends(group: int, within: float) -> bool:
    """Whether every process of ``group`` has exited within ``within`` seconds (multiprocessing's
    resource tracker takes a moment to notice its parent is gone)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_a_rerun_resumes(openai_env, tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it: the driver stops its
    workers, merges what they committed and exits; nothing is left running or half-written."""
    openai_env.latency = 0.1
    # Requests after the 6th wait until released: the run cannot finish before Ctrl-C lands,
    # however long this process is descheduled (a fresh-clone CI once saw the run end first).
    openai_env.hold_after = 6
    out = tmp_path / "out"
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, str(script), str(out)], env=environment, start_new_session=True, stderr=subprocess.PIPE
    )
    try:
        _wait_for_shard_rows(out, 2)
        os.killpg(child.pid, signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
    finally:
        openai_env.hold_after = None
        openai_env.release.set()  # let the held handler threads answer (their clients are gone)
    assert child.returncode != 0 and b"KeyboardInterrupt" in stderr
    assert _group_ends(child.pid, within=10.0)  # no worker outlived its driver
    committed = rows(out)
    assert committed and not (out / ".manifests").exists()  # the workers' shards were merged on the way out
    # No committed row names a temporary file. A worker the executor had to kill mid-write can
    # leave a hidden `.synthaug-*.tmp` behind (no process outlives SIGKILL's lack of clean-up);
    # the rerun removes those before it writes anything (manifest.remove_temp_files), checked below.
    assert not any(".synthaug-" in row["file_name"] for row in committed)
    openai_env.latency = 0.0
    summary = run(out, make_executor(workers=1), per_class=12, classes=["Trouser", "Bag"])
    assert summary["reused"] == len(committed) and summary["generated"] == 24 - len(committed)
    assert_complete(out, 12, classes=["Trouser", "Bag"])
    assert not list(out.rglob(".synthaug-*.tmp"))
