"""Sampling speed of the embedded ``ddpm`` generator, one lever at a time (not part of CI).

Every setting samples the same ``--images`` images (one per seed, classes in turn) with the
shipped generator on the CPU, and the settings take turns, round after round, so that a
machine shared with other work slows them all alike; each figure is the median images/s of
``--rounds`` rounds, and its ratio is taken against the old default measured in the same
rounds: DDIM, 10 steps, guidance 2.0, batch 256, all torch threads, channels-last weights.

Levers (each changes one thing from the old default, except the last):

- threads: 1 torch thread instead of all;
- batch: 64 / 128 / 512 images per forward pass (the guided pass doubles it);
- memory format: contiguous (NCHW) weights instead of channels-last;
- solver/steps: DDIM or DPM-Solver++(2M) (Lu et al. 2022) at fewer steps;
- the new default (``config.json`` of the shipped generator, the CPU's default batch).

Run: ``.venv/bin/python benchmarks/ddpm_speed.py [--images 512] [--rounds 3]`` (no ``nice``:
the ratios are what matter, but the lead measures the absolute figure on a quiet machine).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator

import torch

from synthaug.generate.ddpm.pipeline import DiffusionGenerator, default_sampling_batch

OLD_DEFAULT = {"solver": "ddim", "steps": 10, "batch_size": 256}


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def weights_format(generator: DiffusionGenerator, memory_format: torch.memory_format) -> Iterator[None]:
    generator.unet.to(memory_format=memory_format)
    try:
        yield
    finally:
        generator.unet.to(memory_format=torch.channels_last)  # as DiffusionGenerator.load leaves it


def settings(generator: DiffusionGenerator) -> dict[str, tuple[dict, Callable[[], contextlib.AbstractContextManager]]]:
    """Name -> (sampling arguments, context that sets the lever)."""
    plain = contextlib.nullcontext
    new = dict(generator.sampling_defaults)
    new.pop("guidance_scale", None)
    cases = {
        "old default: DDIM 10 steps, batch 256": (OLD_DEFAULT, plain),
        "threads: 1": (OLD_DEFAULT, lambda: torch_threads(1)),
        "batch: 64": ({**OLD_DEFAULT, "batch_size": 64}, plain),
        "batch: 128": ({**OLD_DEFAULT, "batch_size": 128}, plain),
        "batch: 512": ({**OLD_DEFAULT, "batch_size": 512}, plain),
        "memory format: contiguous weights": (OLD_DEFAULT, lambda: weights_format(generator, torch.contiguous_format)),
    }
    for solver in ("ddim", "dpm-solver++2m"):
        for steps in (5, 6):
            cases[f"solver: {solver} {steps} steps"] = ({**OLD_DEFAULT, "solver": solver, "steps": steps}, plain)
    cases[f"new default: {new}, batch {default_sampling_batch('cpu')}"] = ({**new, "batch_size": None}, plain)
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="images per timed run")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per setting (median reported)")
    parser.add_argument("--only", default=None, help="comma-separated name prefixes of the settings to run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = DiffusionGenerator.load(device="cpu")
    labels = [index % len(generator.classes) for index in range(args.images)]
    seeds = list(range(args.images))
    cases = settings(generator)
    if args.only:
        prefixes = tuple(args.only.split(","))
        cases = {name: case for name, case in cases.items() if name.startswith(("old default", *prefixes))}
    print(f"{args.images} images per run, {args.rounds} rounds, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, guidance {generator.sampling_defaults['guidance_scale']}")
    generator.sample(labels[:32], seeds[:32], steps=2)  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (arguments, lever) in cases.items():
            with lever():
                started = time.perf_counter()
                generator.sample(labels, seeds, **arguments)
                rates[name].append(args.images / (time.perf_counter() - started))
    old = statistics.median(rates[next(iter(cases))])
    for name, values in rates.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"{name:58s} {median:7.1f} images/s  x{median / old:4.2f}  (runs: {runs})")


if __name__ == "__main__":
    main()
