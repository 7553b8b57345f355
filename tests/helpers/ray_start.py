"""A Ray cluster started as a user starts one: ``ray start --head`` in a folder of its own.

Unlike ``ray.cluster_utils.Cluster`` (the session cluster of ``conftest.py``), its workers'
working directory is the folder ``ray start`` ran in, which is what made relative run folders
land in the wrong place. The cluster gets its own free ports and temp folder, so that it
collides neither with the session cluster nor with another ``ray start`` on the machine, and it
is stopped by its own process ids (``ray stop`` would stop every Ray on the machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import synthaug

SOURCE = str(Path(synthaug.__file__).parents[1])
RAY = str(Path(sys.executable).parent / "ray")
# Seconds the head node gets to start, and to stop before its processes are killed.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on this machine right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def can_hide_folders() -> bool:
    """Whether this machine lets an unprivileged process mount a folder over another in its own
    mount namespace (``unshare -rm``), which makes a folder that only the driver sees."""
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30).returncode == 0


def environment(scratch: Path) -> dict[str, str]:
    """The environment of a ``ray start`` or ``synthaug`` subprocess: this source first, no Ray
    auth tokens, and ``TMPDIR`` (the workers' scratch caches) under the test's folder."""
    path = os.pathsep.join([SOURCE, *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, "RAY_AUTH_MODE": "disabled", "TMPDIR": str(scratch)}


@contextlib.contextmanager
def ray_start(cwd: Path, scratch: Path, hide: Path | None = None) -> Iterator[str]:
    """Start ``ray start --head --num-cpus 2`` in ``cwd``; yield its address; stop it.

    Args:
        cwd: The head node's working directory (its workers' too).
        scratch: ``TMPDIR`` of the node (an existing folder).
        hide: A folder the node's processes see as an empty tmpfs (a private mount namespace):
            the driver writes there, the workers do not see it, as on a cluster without a
            shared file system.
    """
    port, *others = free_ports(5)
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    command = [RAY, "start", "--head", "--block", "--num-cpus", "2", "--port", str(port),
               "--include-dashboard=false", "--disable-usage-stats", "--temp-dir", temp_dir,
               "--dashboard-agent-listen-port", str(others[0]), "--dashboard-agent-grpc-port", str(others[1]),
               "--runtime-env-agent-port", str(others[2]), "--metrics-export-port", str(others[3])]  # fmt: skip
    if hide is not None:
        command = ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs none "$0" && exec "$@"', str(hide), *command]
    log_path = Path(temp_dir) / "ray-start.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=environment(scratch), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while b"Ray runtime started" not in log_path.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start did not come up:\n{log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(process)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to ``ray start --block`` (it stops the processes it started), then SIGKILL to
    whatever of its session is left after :data:`STOP_TIMEOUT` (worker processes included)."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_TIMEOUT)
    for pid in _session_members(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


def _session_members(session: int) -> list[int]:
    """Ids of the processes of session ``session`` (from ``/proc``; none elsewhere)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session:  # fields after the name: state, ppid, pgrp, session
                members.append(int(stat.parent.name))
    return members
