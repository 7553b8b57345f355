"""Cost of one Bayes-by-Backprop training step against a deterministic step (not part of CI).

Times one optimiser step (forward, ELBO loss, backward, Adam update) of the ``cnn``
backbone's trainable module at batch 128 on 28x28 inputs, for the deterministic network
and for its Bayesian versions (``lrt`` and ``flipout``; all layers and the last layer
only), and prints the median step time and its ratio to the deterministic step. The
variants are timed in interleaved rounds in one process, so that a change in machine load
hits all of them alike. Target: every training-step ratio <= 2.5. It also times one
prediction pass (eval mode, batch 512), where every Bayesian variant draws one weight sample
for the whole batch and should cost about what the deterministic pass does.

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
PREDICTION_BATCH = 512
N_TRAIN = 60_000  # the KL is divided by the training-set size, as in a real fit


def make_step(
    variant: str, inputs: torch.Tensor, targets: torch.Tensor
) -> tuple[Callable[[], None], torch.nn.Module]:
    """A closure that runs one training step of ``variant`` (``deterministic`` or ``estimator/layers``),
    and its model."""
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

    return step, model


def make_prediction(model: torch.nn.Module, inputs: torch.Tensor) -> Callable[[], None]:
    """A closure that runs one prediction pass (eval mode, no gradients): one weight sample."""

    def predict() -> None:
        model.eval()
        with torch.no_grad():
            model(inputs)
        model.train()

    return predict


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
    built = {variant: make_step(variant, inputs, targets) for variant in variants}
    steps = {variant: step for variant, (step, _) in built.items()}
    prediction_inputs = torch.randn(PREDICTION_BATCH, 1, IMAGE_SIZE, IMAGE_SIZE)
    predictions = {variant: make_prediction(model, prediction_inputs) for variant, (_, model) in built.items()}
    for work in (*steps.values(), *predictions.values()):
        for _ in range(args.warmup):
            work()
    seconds: dict[str, list[float]] = {variant: [] for variant in variants}
    prediction_seconds: dict[str, list[float]] = {variant: [] for variant in variants}
    for _ in range(args.rounds):
        for variant in variants:
            for work, times in ((steps[variant], seconds), (predictions[variant], prediction_seconds)):
                started = time.perf_counter()
                work()
                times[variant].append(time.perf_counter() - started)

    baseline = statistics.median(seconds["deterministic"])
    prediction_baseline = statistics.median(prediction_seconds["deterministic"])
    print(f"cnn backbone, batch {BATCH_SIZE} (prediction: {PREDICTION_BATCH}), {IMAGE_SIZE}x{IMAGE_SIZE}, "
          f"{torch.get_num_threads()} threads, median of {args.rounds} interleaved rounds")
    print(f"{'variant':<16}{'ms/step':>10}{'ratio':>8}{'ms/prediction':>16}{'ratio':>8}")
    for variant in variants:
        median = statistics.median(seconds[variant])
        ratio = median / baseline
        prediction = statistics.median(prediction_seconds[variant])
        flag = "" if ratio <= 2.5 else "  > 2.5x target"
        print(f"{variant:<16}{median * 1e3:>10.1f}{ratio:>8.2f}{prediction * 1e3:>16.1f}"
              f"{prediction / prediction_baseline:>8.2f}{flag}")


if __name__ == "__main__":
    main()
