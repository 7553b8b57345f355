"""Torch threads per study unit: speed, and whether the numbers follow the thread count (not part of CI).

A study unit's torch thread count is fixed by the config's ``threads`` (default 1) rather than
``cores / workers``, because the float reduction order follows the thread count. This script
shows both halves of that choice on one demo-sized unit (``deterministic`` ``cnn`` on 100
Fashion-MNIST images per class, ``--epochs`` epochs, then ``predict_proba`` on 2,000 test
images), trained ``--repeats`` times at each thread count in this process:

- seconds per unit, median (and spread), and the ratio to 1 thread;
- whether the test-set probabilities are bit-identical between repeats at one thread count
  (the unit is deterministic) and between thread counts (the numbers do not follow threads).

Run: ``nice -n 10 .venv/bin/python benchmarks/threads.py [--threads 1 2] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from synthaug.data import load_dataset, subsample_per_class
from synthaug.methods import make_method


def one_unit(train, val, test, epochs: int) -> tuple[float, np.ndarray]:
    """Seconds to fit and predict one seeded unit, and its test probabilities ``(S, N, C)``."""
    started = time.perf_counter()
    method = make_method("deterministic", backbone="cnn", epochs=epochs, seed=0, device="cpu")
    method.fit(train, val)
    probs = method.predict_proba(test)
    return time.perf_counter() - started, probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    pool = load_dataset("fashion-mnist:train[50000:]")
    train = subsample_per_class(pool, 100, seed=0)
    val = subsample_per_class(pool, 20, seed=1)
    test = load_dataset("fashion-mnist:test").subset(slice(0, 2000))
    first: dict[int, np.ndarray] = {}
    baseline = None
    print(f"deterministic cnn, 100 images/class, {args.epochs} epochs, predict 2000; {args.repeats} repeats")
    for threads in args.threads:
        torch.set_num_threads(threads)
        runs = [one_unit(train, val, test, args.epochs) for _ in range(args.repeats)]
        seconds = [run[0] for run in runs]
        median = statistics.median(seconds)
        baseline = baseline or median
        repeatable = all(np.array_equal(runs[0][1], run[1]) for run in runs[1:])
        first[threads] = runs[0][1]
        print(
            f"threads={threads}: {median:.2f} s/unit (min {min(seconds):.2f}, max {max(seconds):.2f}), "
            f"{median / baseline:.2f}x the time of threads={args.threads[0]}; repeats bit-identical: {repeatable}"
        )
    reference = first[args.threads[0]]
    for threads, probs in first.items():
        if threads != args.threads[0]:
            difference = float(np.abs(probs - reference).max())
            agree = float(np.mean(probs.mean(0).argmax(1) == reference.mean(0).argmax(1)))
            print(
                f"threads={threads} vs {args.threads[0]}: bit-identical {np.array_equal(probs, reference)}, "
                f"max |dp| {difference:.2e}, same prediction on {agree:.4f} of the test images"
            )


if __name__ == "__main__":
    main()
