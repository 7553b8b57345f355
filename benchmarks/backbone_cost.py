"""Seconds per image of a backbone on this machine: feature extraction and one fine-tuning step.

The cost figures of ``examples/resnetv2-152-original.yaml`` come from here. The network is
built with random weights (the cost does not depend on them, and nothing is downloaded),
through the same :class:`~synthaug.models.timm_backbone.TimmBackbone` a study uses::

    nice -n 10 .venv/bin/python benchmarks/backbone_cost.py --backbone timm:resnetv2_152x2_bit \\
        --batch-size 4 --repeats 2

Each figure is the median over ``--repeats`` timed batches after one warm-up batch, at the
model's own input size (224 px for ``resnetv2_152x2_bit``); ``--threads`` intra-op threads.
Fine-tuning is forward + backward + an AdamW step of the whole network and its new head.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch
from torch import nn

from synthaug.models import make_backbone


def seconds_per_batch(step, batch: torch.Tensor, repeats: int) -> float:
    step(batch)  # warm-up: allocator, kernels
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(batch)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="timm:resnetv2_152x2_bit")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    backbone = make_backbone(args.backbone, freeze=False)
    size = backbone.data_config()["input_size"]
    module = backbone.build_trainable(num_classes=10)
    parameters = sum(p.numel() for p in module.parameters())
    batch = torch.randn(args.batch_size, *size)
    print(f"{args.backbone}: {parameters / 1e6:.1f} M parameters, input {tuple(size)}, "
          f"batch {args.batch_size}, {args.threads} threads")

    network = module[0].eval()

    @torch.no_grad()
    def extract(pixels: torch.Tensor) -> None:
        network(pixels)

    forward = seconds_per_batch(extract, batch, args.repeats) / args.batch_size
    print(f"feature extraction: {forward:.3f} s/image ({1 / forward:.2f} images/s)")

    if not args.skip_training:
        module.train()
        optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)
        labels = torch.arange(args.batch_size) % 10

        def train_step(pixels: torch.Tensor) -> None:
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(module(pixels), labels).backward()
            optimizer.step()

        step = seconds_per_batch(train_step, batch, args.repeats) / args.batch_size
        print(f"fine-tuning step: {step:.3f} s/image ({1 / step:.2f} images/s, {step / forward:.1f}x extraction)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
