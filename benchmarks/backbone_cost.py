"""Seconds per image of a backbone on this machine: feature extraction and one fine-tuning step.

The cost figures of ``examples/resnetv2-152-original.yaml`` come from here. The network is
built with random weights (the cost does not depend on them, and nothing is downloaded),
through the same :class:`~synthaug.models.timm_backbone.TimmBackbone` a study uses::

    nice -n 10 .venv/bin/python benchmarks/backbone_cost.py --backbone timm:resnetv2_152x2_bit \\
        --batch-size 4 --repeats 2

Each figure is the median over ``--repeats`` timed batches after one warm-up batch, at the
model's own input size (224 px for ``resnetv2_152x2_bit``); ``--threads`` intra-op threads.
Fine-tuning is forward + backward + an AdamW step of the whole network and its new head. The
``--baseline`` (ResNet-50) is measured the same way in the same process; the ratio in CPU
seconds carries over to machines where only the baseline's speed is known (a GPU).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch
from torch import nn

from synthaug.models import make_backbone


def seconds_per_batch(step, batch: torch.Tensor, repeats: int) -> tuple[float, float]:
    """Median wall-clock and process CPU seconds of ``step(batch)``, after one warm-up call.

    On a shared machine the wall clock depends on the other processes; CPU seconds (summed
    over threads) do much less, and wall = CPU / threads on an idle machine.
    """
    step(batch)  # warm-up: allocator, kernels
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        step(batch)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def measure(name: str, args: argparse.Namespace) -> tuple[float, float | None]:
    """Print and return CPU seconds per image of extraction and (unless skipped) of a training step."""
    backbone = make_backbone(name, freeze=False)
    size = backbone.data_config()["input_size"]
    module = backbone.build_trainable(num_classes=10)
    parameters = sum(p.numel() for p in module.parameters())
    batch = torch.randn(args.batch_size, *size)
    print(f"{name}: {parameters / 1e6:.1f} M parameters, input {tuple(size)}, "
          f"batch {args.batch_size}, {args.threads} threads")

    network = module[0].eval()

    @torch.no_grad()
    def extract(pixels: torch.Tensor) -> None:
        network(pixels)

    forward, forward_cpu = (seconds / args.batch_size for seconds in seconds_per_batch(extract, batch, args.repeats))
    print(f"  feature extraction: {forward:.3f} s/image wall ({1 / forward:.2f} images/s), "
          f"{forward_cpu:.3f} CPU s/image")
    if args.skip_training:
        return forward_cpu, None
    module.train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)
    labels = torch.arange(args.batch_size) % 10

    def train_step(pixels: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(module(pixels), labels).backward()
        optimizer.step()

    step, step_cpu = (seconds / args.batch_size for seconds in seconds_per_batch(train_step, batch, args.repeats))
    print(f"  fine-tuning step: {step:.3f} s/image wall ({1 / step:.2f} images/s), {step_cpu:.3f} CPU s/image "
          f"({step_cpu / forward_cpu:.1f}x extraction)")
    return forward_cpu, step_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="timm:resnetv2_152x2_bit")
    parser.add_argument("--baseline", default="timm:resnet50",
                        help="measured the same way in the same process, for the ratio ('' to skip)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    figures = measure(args.backbone, args)
    if args.baseline:
        baseline = measure(args.baseline, args)
        ratios = ", ".join(f"{what} {mine / theirs:.1f}x" for what, mine, theirs in
                           zip(("extraction", "training step"), figures, baseline) if mine is not None)
        print(f"{args.backbone} / {args.baseline} in CPU seconds per image: {ratios}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
