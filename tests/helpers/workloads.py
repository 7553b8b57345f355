"""Unit functions for the execution tests: importable by worker processes and Ray workers
(test modules themselves are not, under pytest's ``importlib`` import mode)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from synthaug.errors import ConfigError
from synthaug.execution import worker_state


def square(value: int) -> int:
    return value * value


def pid_of(value: int) -> tuple[int, int]:
    """``(value, pid)`` after a short pause, so that every worker gets a unit."""
    time.sleep(0.2)
    return value, os.getpid()


def torch_threads(_: int) -> int:
    import torch

    return torch.get_num_threads()


def refuse_three(value: int) -> int:
    if value == 3:
        raise ConfigError("unit 3: bad input")
    return value


def built_once(value: int) -> tuple[int, int, int]:
    """``(value, pid, id of this process's shared state)``: the state is built once per process."""
    state = worker_state(("tests", "built_once"), lambda: [time.monotonic_ns()])
    time.sleep(0.05)
    return value, os.getpid(), state[0]


def slow_unit(item: tuple[int, str, float]) -> tuple[int, int]:
    """Record that unit ``value`` started (a file ``<value>-<pid>`` in ``folder``), sleep, and
    record that it finished (``<value>-<pid>.done``)."""
    value, folder, seconds = item
    marker = Path(folder) / f"{value}-{os.getpid()}"
    marker.touch()
    time.sleep(seconds)
    marker.with_suffix(".done").touch()
    return value, os.getpid()


def shared_value(_: int) -> object:
    """What the driver shared under ``("tests", "shared")``, or ``"not shared"``."""
    return worker_state(("tests", "shared"), lambda: "not shared")

