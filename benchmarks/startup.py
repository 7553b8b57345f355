"""Start-up time of the ``synthaug`` command line (not part of CI).

Runs, as fresh subprocesses, ``synthaug --help``, ``synthaug COMMAND --help`` for every
command, and commands that fail at once on a missing input (one line on stderr, exit code
1), ``--repeats`` times each in interleaved rounds (so a change in machine load hits every
command alike), together with ``python -c pass`` as the floor of any Python program. Prints
each command's median wall time, its ratio to ``python -c pass``, and its median CPU time
(user + system, which a busy machine inflates far less than wall time). Target: every median
<= 0.5 s on a quiet machine.

Run: ``nice -n 10 .venv/bin/python benchmarks/startup.py [--repeats 11]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 0.5
MISSING = "/nonexistent/synthaug-startup-benchmark"


def commands(scratch: Path) -> dict[str, list[str]]:
    """Label -> argv of every measured command (``synthaug`` run as ``python -m synthaug.cli``)."""
    synthaug = [sys.executable, "-m", "synthaug.cli"]
    from synthaug.cli.main import COMMAND_MODULES

    names = [name.replace("_", "-") for name in COMMAND_MODULES]
    measured = {"python -c pass": [sys.executable, "-c", "pass"], "synthaug --help": [*synthaug, "--help"]}
    measured |= {f"synthaug {name} --help": [*synthaug, name, "--help"] for name in names}
    out = str(scratch / "out")
    measured |= {
        "train: missing --train folder": [*synthaug, "train", "--train", MISSING, "--out", out],
        "predict: missing --data folder": [*synthaug, "predict", "--model", MISSING, "--data", MISSING, "--out",
                                           out + ".npz"],
        "evaluate: missing predictions file": [*synthaug, "evaluate", MISSING + ".npz", "--out", out],
        "audit: missing data folder": [*synthaug, "audit", MISSING, "--out", out],
        "study: missing config file": [*synthaug, "study", MISSING + ".yaml", "--out", out],
        "train-generator: missing --data": [*synthaug, "train-generator", "--data", MISSING, "--out", out],
    }
    return measured


def run_once(argv: list[str]) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds, exit code and stderr of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "COLUMNS": "100"})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, completed.returncode, completed.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11, help="runs of each command (median reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        measured = commands(Path(scratch))
        times: dict[str, list[float]] = {label: [] for label in measured}
        cpu_times: dict[str, list[float]] = {label: [] for label in measured}
        outcome: dict[str, tuple[int, str]] = {}
        for _ in range(args.repeats):
            for label, argv in measured.items():
                seconds, cpu, code, stderr = run_once(argv)
                times[label].append(seconds)
                cpu_times[label].append(cpu)
                outcome[label] = (code, stderr.strip())
    floor = statistics.median(times["python -c pass"])
    width = max(map(len, measured))
    print(f"{'command':<{width}}  median s  x python  cpu s  exit  last stderr line")
    failures = []
    for label, values in times.items():
        median = statistics.median(values)
        code, stderr = outcome[label]
        last_line = stderr.splitlines()[-1] if stderr else ""
        cpu = statistics.median(cpu_times[label])
        print(f"{label:<{width}}  {median:8.3f}  {median / floor:8.1f}  {cpu:5.2f}  {code:4d}  {last_line[:60]}")
        if label != "python -c pass" and median > TARGET_SECONDS:
            failures.append(label)
        if label.startswith("synthaug") and code != 0:
            failures.append(f"{label} (exit {code})")
        if ":" in label and (code != 1 or len(stderr.splitlines()) != 1):
            failures.append(f"{label} (expected one error line and exit code 1)")
    print(f"target: every command <= {TARGET_SECONDS} s: " + ("met" if not failures else f"missed by {failures}"))


if __name__ == "__main__":
    main()
