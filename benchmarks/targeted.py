"""Uncertainty-targeted generation against uniform allocation at equal budget (issue 12).

Fashion-MNIST, ``cnn``, a deep ensemble: 10 real images per class (from training images
50,000-59,999, which the shipped ``ddpm`` generator never saw) plus a budget of 400 images
from the shipped generator, spent in 4 rounds. Each allocation rule is one targeted regime of
a study (``synthaug.study.targeted``):

* ``epistemic``: each round's images go to the classes in proportion to the mean mutual
  information of their real validation images (20 % spread evenly as a floor);
* ``error``: in proportion to their validation error rate;
* ``uniform``: evenly (the control).

Every rule and seed draws from the same generated images (slot ``i`` of a class is the same
image everywhere), so the rules differ only in how many of each class they use. Targets:
targeted beats uniform by >= 1.5 accuracy points at the full budget (paired by seed, t-interval
above 0), or reaches uniform's final accuracy with <= 60 % of the images.

Run (a few minutes on 2 CPU cores; generation is cached under ``--out``)::

    nice -n 10 .venv/bin/python benchmarks/targeted.py --out benchmarks/results/targeted

Smoke run (one seed, two rules, a small budget)::

    nice -n 10 .venv/bin/python benchmarks/targeted.py --seeds 0 --allocations epistemic uniform \\
        --budget 40 --rounds 2 --out /tmp/targeted-smoke

Writes ``--out/results.json`` (settings, environment, curves, comparisons) and
``--out/summary.txt``; the study's own run folder is ``--out/run`` (``synthaug report`` draws it).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import synthaug
from synthaug.fileio import atomic_write_text, to_json_value
from synthaug.progress import ProgressEvent
from synthaug.study import parse_config, run_study
from synthaug.study.results import RESULTS_FILE, read_results
from synthaug.study.targeted import targeted_analysis


def study_config(args: argparse.Namespace) -> dict[str, Any]:
    """The study: one targeted regime per allocation rule, same budget, rounds and method."""
    return {
        "title": "Does generating where the model is uncertain beat generating evenly?",
        "real": {"train": "fashion-mnist:train[50000:]", "test": args.test, "val_fraction": args.val_fraction},
        # per_class 1: no regime draws from the source's own folder; the targeted rounds generate
        # into their own (shared) folder as they ask for images.
        "synthetic": [{"name": "ddpm", "generate": {"backend": "ddpm", "per_class": 1, "seed": 0}}],
        "regimes": [
            {"name": f"targeted-{rule}", "data": "mixed", "source": "ddpm", "sizes": [args.real_per_class],
             "budget": args.budget, "rounds": args.rounds, "allocate": rule, "floor": args.floor,
             "method": "ensemble"}
            for rule in args.allocations
        ],
        "backbones": ["cnn"],
        "methods": [{"key": "ensemble", "params": {"num_members": args.members}}],
        # A fixed number of optimiser steps rather than epochs: round 0 trains on 100 images,
        # the last on 500; the same step count keeps their training comparable.
        "method_params": {"min_steps": args.min_steps, "batch_size": 32},
        "seeds": list(args.seeds),
        "bootstrap_resamples": 100,
        "threads": 1,
        "inspect": "off" if args.no_inspect else "thumbnails",
    }


def _printer(event: ProgressEvent) -> None:
    if event.finished or event.stage == "study":
        print(f"[{time.strftime('%H:%M:%S')}] {event.stage} {event.done}/{event.total or '?'} {event.item}",
              file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/targeted"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--allocations", nargs="+", default=["epistemic", "error", "uniform"],
                        choices=["epistemic", "error", "uniform"])
    parser.add_argument("--real-per-class", type=int, default=10)
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--floor", type=float, default=0.2)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--min-steps", type=int, default=150)
    parser.add_argument("--val-fraction", type=float, default=0.05)
    parser.add_argument("--test", default="fashion-mnist:test")
    parser.add_argument("--no-inspect", action="store_true", help="Skip the inspection of the ddpm source.")
    parser.add_argument("--summary-only", action="store_true", help="Summarise the finished run in --out/run "
                        "(e.g. one copied back from a GPU machine) without running anything.")
    args = parser.parse_args(argv)
    if "uniform" not in args.allocations:
        parser.error("--allocations must include uniform (the control)")
    started = time.perf_counter()
    config = parse_config(study_config(args))
    if args.summary_only:
        results = read_results(args.out / "run" / RESULTS_FILE)
    else:
        results = run_study(config, args.out / "run", progress=_printer).results
    curves, comparisons = targeted_analysis(config, results, args.out / "run")
    lines = [f"targeted generation, Fashion-MNIST cnn ensemble({args.members}), {args.real_per_class} real/class + "
             f"{args.budget} ddpm images in {args.rounds} rounds, seeds {args.seeds}", ""]
    for curve in curves:
        points = ", ".join(f"{images}: {100 * interval.mean:.2f}"
                           for images, interval in zip(curve.images, curve.accuracy))
        lines.append(f"{curve.regime:20s} test accuracy % by images spent: {points}")
    lines.append("")
    verdicts = []
    for comparison in comparisons:
        difference = comparison.final_difference
        share = comparison.share_of_budget
        beats = difference.mean >= 0.015 and difference.low > 0
        saves = share is not None and share <= 0.6
        verdicts.append(beats or saves)
        lines.append(
            f"{comparison.regime} - {comparison.baseline}: {100 * difference.mean:+.2f} points "
            f"(95 % CI {100 * difference.low:+.2f} .. {100 * difference.high:+.2f}, n={difference.n}); reaches "
            f"uniform's final {100 * comparison.uniform_final:.2f} % at "
            + ("never" if share is None else f"{comparison.images_to_match:.0f} images ({100 * share:.0f} % of budget)")
            + f" (mean curves; {comparison.seeds_reaching} of {difference.n} seeds reach their own uniform final by "
            f"60 %) -> target {'met' if beats or saves else 'missed'}"
        )
        lines.append("    difference by images spent: " + ", ".join(
            f"{images}: {100 * interval.mean:+.2f} [{100 * interval.low:+.2f}, {100 * interval.high:+.2f}]"
            for images, interval in zip(curves[0].images, comparison.by_images)))
    for curve in curves:
        lines.append(f"allocation per class per round, {curve.regime}: "
                     + "; ".join(f"{label} {'/'.join(f'{value:.0f}' for value in values)}"
                                 for label, values in curve.allocation.items()))
    summary = "\n".join(lines)
    print(summary)
    record = {
        "settings": vars(args) | {"out": str(args.out)},
        "environment": {"synthaug": synthaug.__version__, "python": platform.python_version(),
                        "platform": platform.platform()},
        "seconds": time.perf_counter() - started,
        "study_seconds": sum(result.unit_seconds for result in results),
        "curves": [curve.to_dict() for curve in curves],
        "comparisons": [comparison.to_dict() for comparison in comparisons],
        "target_met": any(verdicts),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "results.json", json.dumps(to_json_value(record), indent=2) + "\n")
    atomic_write_text(args.out / "summary.txt", summary + "\n")
    return record


if __name__ == "__main__":
    main()
