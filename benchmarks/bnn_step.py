"""Cost of one Bayes-by-Backprop training step against a deterministic step (not part of CI).

Times one optimiser step (forward, ELBO loss, backward, Adam update) of the ``cnn``
backbone's trainable module at batch 128 on 28x28 inputs, for the deterministic network
and for its Bayesian versions (``lrt`` and ``flipout``; all layers and the last layer
only), and prints the median step time and its ratio to the deterministic step. The
variants are timed in interleaved rounds in one process, so that a change in machine load
hits all of them alike. Target: every ratio <= 2.5.

Run: ``nice -n 10 .venv/bin/python benchmarks/bnn_step.py [--rounds 30] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from synthaug.methods.bnn import ScaledKL
from synthaug.models import make_backbone
from synthaug.models.bayesian import convert_to_bayesian

BATCH_SIZE = 128
IMAGE_SIZE = 28
NUM_CLASSES = 10
N_TRAIN = 60_000  # the KL is divided by the training-set size, as in a real fit


def make_step(variant: str, inputs: torch.Tensor, targets: torch.Tensor) -> Callable[[], None]:
    """A closure that runs one training step of ``variant`` (``deterministic`` or ``estimator/layers``)."""
    backbone = make_backbone("cnn", image_size=IMAGE_SIZE)
    # Dropout 0 in both, as the BNN uses it: the comparison is the variational overhead.
    model = backbone.build_trainable(NUM_CLASSES, dropout=0.0)
    scaled_kl = None
    if variant != "deterministic":
        estimator, layers = variant.split("/")
        model = convert_to_bayesian(model, bayesian_layers=layers, estimator=estimator)
        scaled_kl = ScaledKL()
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = F.cross_entropy(model(inputs), targets)
        if scaled_kl is not None:
            loss = loss + scaled_kl(model, N_TRAIN)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    inputs = torch.randn(BATCH_SIZE, 1, IMAGE_SIZE, IMAGE_SIZE)
    targets = torch.randint(0, NUM_CLASSES, (BATCH_SIZE,))
    variants = ["deterministic", "lrt/all", "flipout/all", "lrt/last", "flipout/last"]
    steps = {variant: make_step(variant, inputs, targets) for variant in variants}
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    seconds: dict[str, list[float]] = {variant: [] for variant in variants}
    for _ in range(args.rounds):
        for variant, step in steps.items():
            started = time.perf_counter()
            step()
            seconds[variant].append(time.perf_counter() - started)

    baseline = statistics.median(seconds["deterministic"])
    print(f"cnn backbone, batch {BATCH_SIZE}, {IMAGE_SIZE}x{IMAGE_SIZE}, {torch.get_num_threads()} threads, "
          f"median of {args.rounds} interleaved steps")
    print(f"{'variant':<16}{'ms/step':>10}{'ratio':>8}")
    for variant in variants:
        median = statistics.median(seconds[variant])
        ratio = median / baseline
        flag = "" if ratio <= 2.5 else "  > 2.5x target"
        print(f"{variant:<16}{median * 1e3:>10.1f}{ratio:>8.2f}{flag}")


if __name__ == "__main__":
    main()
