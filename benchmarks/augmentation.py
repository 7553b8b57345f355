"""Generated images against classical augmentation (issue 18): do they beat, or add to, it?

Not run in CI. Writes a study config (Fashion-MNIST, ``cnn``, ``deterministic``) to
``--out/config.yaml`` and runs it with :func:`synthaug.study.run_study` (resumable: rerun the
same command to go on), then prints, at each real size N:

- accuracy and ECE (mean ± 95 % t-interval over seeds) of every cell of
  {no generated images, + ddpm, + guided ddpm} x {none, flip-crop, trivialaugment, randaugment,
  mixup, cutmix};
- the paired answers of the study's analysis (``StudyAnalysis.augmentation``): generated
  images over no augmentation (X), over the best classical policy at N (Y), and on top of it
  (Z), for accuracy and ECE, for each generated source.

The real pool is Fashion-MNIST training images 50,000-59,999 (never seen by the shipped
``ddpm``), the test set the official one. ``ddpm`` = 80 text-to-image images per class;
``guided`` = 80 SDEdit variants per class of the regime's own real images (strengths 0.25-1.0,
as the demo's former ``ddpm-guided`` source). Every unit trains exactly ``--max-steps`` optimiser
steps (no early stopping, the best validation checkpoint kept), so every cell gets the same
budget whatever its set's size and policy.
The training step cost of each policy against ``none`` is measured by
``benchmarks/augmentation_step.py`` (``benchmarks/results/augmentation_step.cpu.txt``).

Run (2-core CPU; 270 units at the full grid, about 40 minutes)::

    nice -n 10 .venv/bin/python benchmarks/augmentation.py --workers 2 \\
        --out benchmarks/results/augmentation | tee benchmarks/results/augmentation.cpu.txt
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import yaml

POLICIES = ("none", "flip-crop", "trivialaugment", "randaugment", "mixup", "cutmix")
GENERATED = 80


def study_config(sizes: list[int], seeds: list[int], max_steps: int, policies: tuple[str, ...]) -> dict[str, Any]:
    """The benchmark's study: real, + ddpm, + guided ddpm, each with every policy."""
    generate = {"backend": "ddpm", "per_class": GENERATED, "prompt": "a photo of a {label}", "seed": 0}
    regimes: list[dict[str, Any]] = []
    for source in (None, "ddpm", "guided"):
        for policy in policies:
            name = "real" + (f"+{source}" if source else "") + ("" if policy == "none" else f"+{policy}")
            regime: dict[str, Any] = {"name": name, "data": "real" if source is None else "mixed", "sizes": sizes}
            if source is not None:
                regime.update(source=source, mix={"synthetic_per_class": GENERATED})
            if policy != "none":
                regime["augment"] = policy
            regimes.append(regime)
    return {
        "title": "Do generated images beat, or add to, classical augmentation on Fashion-MNIST?",
        "real": {"train": "fashion-mnist:train[50000:]", "test": "fashion-mnist:test", "val_fraction": 0.05},
        "synthetic": [
            {"name": "ddpm", "generate": generate},
            {"name": "guided", "generate": {**generate, "init_images": "real", "strength": [0.25, 0.5, 0.75, 1.0]}},
        ],
        "regimes": regimes,
        "backbones": ["cnn"],
        "methods": ["deterministic"],
        "method_params": {"max_steps": max_steps, "batch_size": 64, "patience": None},
        "seeds": seeds,
        "bootstrap_resamples": 200,
        "inspect": "off",
        "threads": 1,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/augmentation"),
                        help="run folder; config.yaml is written here (rerun resumes)")  # fmt: skip
    parser.add_argument("--sizes", default="10,30,100", help="real images per class, comma-separated")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (>= 5 for the record)")
    parser.add_argument("--policies", default=",".join(POLICIES), help="policies, comma-separated (none first)")
    parser.add_argument("--max-steps", type=int, default=300, help="optimiser steps of every unit")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    return parser.parse_args(argv)


def _cell(interval: Any) -> str:
    half = (interval.high - interval.low) / 2 if not math.isnan(interval.low) else float("nan")
    return f"{100 * interval.mean:5.1f} ± {100 * half:4.1f}"


def print_tables(analysis: Any, policies: tuple[str, ...]) -> None:
    """The cells (accuracy, ECE) and the paired X / Y / Z answers, per real size."""
    from synthaug.study.text import interval_points

    groups = {(g.key.real_per_class, g.key.source, g.key.augment): g for g in analysis.groups}
    for size in sorted({key[0] for key in groups}):
        print(f"\n## {size} real images per class: accuracy % / ECE % (mean ± 95 % CI over seeds)")
        print(f"{'policy':<16}" + "".join(f"{label:>34}" for label in ("real", "+ 80 ddpm", "+ 80 guided")))
        for policy in policies:
            cells = []
            for source in (None, "ddpm", "guided"):
                group = groups.get((size, source, policy))
                cells.append("–" if group is None else
                             f"{_cell(group.metrics['accuracy'])} / {_cell(group.metrics['ece'])}")  # fmt: skip
            under = sum(g.under_trained for (n, _, p), g in groups.items() if (n, p) == (size, policy))
            flag = f"  ({under} under-trained)" if under else ""
            print(f"{policy:<16}" + "".join(f"{cell:>34}" for cell in cells) + flag)
        for record in analysis.augmentation:
            if record.real_per_class != size:
                continue
            print(f"{record.source}: best classical policy = {record.best_policy} "
                  "(highest mean accuracy of real + policy)")
            for name, comparison in (("X over none", record.over_none), ("Y over best", record.over_best),
                                     ("Z on top of best", record.on_top_of_best)):  # fmt: skip
                if comparison is None:
                    print(f"  {name:<17} not run")
                    continue
                accuracy = interval_points(comparison.differences["accuracy"].seeds)
                ece = interval_points(comparison.differences["ece"].seeds)
                print(f"  {name:<17} accuracy {accuracy} points, ECE {ece} points")
    print("\nTraining step cost of each policy vs none: benchmarks/results/augmentation_step.cpu.txt")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from synthaug.execution.local import LocalExecutor
    from synthaug.study import parse_config, run_study

    sizes = [int(size) for size in args.sizes.split(",")]
    seeds = [int(seed) for seed in args.seeds.split(",")]
    policies = tuple(args.policies.split(","))
    data = study_config(sizes, seeds, args.max_steps, policies)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    config = parse_config(data)
    done: list[float] = []
    started = time.perf_counter()

    def on_unit_done(unit: Any, result: Any) -> None:
        done.append(result.unit_seconds)
        print(f"[{len(done)}] {unit.unit_id}: {result.unit_seconds:.1f} s, accuracy "
              f"{100 * result.metrics['accuracy']:.1f} %", file=sys.stderr, flush=True)  # fmt: skip

    with LocalExecutor(args.workers, threads_per_worker=config.threads) as executor:
        result = run_study(config, args.out, executor=executor, on_unit_done=on_unit_done)
    print(f"# benchmarks/augmentation.py --sizes {args.sizes} --seeds {args.seeds} --max-steps {args.max_steps} "
          f"--workers {args.workers}: {result.units_total} units ({result.units_resumed} resumed), "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    print_tables(result.analysis, policies)


if __name__ == "__main__":
    main()
