"""Pixel batches in NCHW vs channels-last (NHWC) memory order: cost and numbers on a CPU.

Not run in CI. :func:`synthaug.methods.training.channels_last` re-lays every pixel batch in
NHWC order before the network sees it, so that in-memory, decoded-once and streamed batches
train the same numbers. This script measures what that costs and why it matters: the same
``cnn`` (default and the demo's half width), Fashion-MNIST test images, one torch thread,
forward passes over 10,000 images and training steps at batch 64, each layout timed in
interleaved rounds in one process (median; ratio NCHW / NHWC, > 1 means NHWC is faster); then
the largest difference between the two layouts' logits in evaluation, and between the weights
of two copies of one network trained 20 steps on the same batches in either layout.

Run::

    .venv/bin/python benchmarks/pixel_layout.py --rounds 5 | tee benchmarks/results/pixel_layout.cpu.txt
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per layout (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--steps", type=int, default=30, help="training steps per round")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from synthaug.data.catalog import load_dataset
    from synthaug.methods.training import channels_last, seeded
    from synthaug.models.cnn import CNNBackbone

    test = load_dataset("fashion-mnist:test")
    pixels = torch.from_numpy(np.moveaxis(np.asarray(test.as_array()), -1, 1).copy())  # NCHW, writable
    layouts = {"NCHW": lambda batch: batch.contiguous(), "NHWC": channels_last}
    print(f"# benchmarks/pixel_layout.py --rounds {args.rounds} --threads {args.threads} --steps {args.steps}")
    print(f"cnn on {len(pixels)} Fashion-MNIST test images, {args.threads} thread(s), median of {args.rounds} rounds")
    for channels in ((32, 64), (16, 32)):
        backbone = CNNBackbone(channels=channels)
        with seeded(0):
            model = backbone.build_trainable(10)
        model.eval()
        predict: dict[str, list[float]] = {name: [] for name in layouts}
        step: dict[str, list[float]] = {name: [] for name in layouts}
        with torch.inference_mode():  # the same weights and images in both layouts
            first = backbone.normalize_pixels(pixels[:2048])
            difference = (model(first.contiguous()) - model(channels_last(first))).abs().max().item()
        batch_images = backbone.normalize_pixels(pixels[:64])
        targets = torch.from_numpy(np.asarray(test.targets[:64], dtype=np.int64))
        for _ in range(args.rounds):
            for name, layout in layouts.items():
                with torch.inference_mode():
                    started = time.perf_counter()
                    for chunk in pixels.split(512):
                        model(backbone.normalize_pixels(layout(chunk)))
                    predict[name].append(time.perf_counter() - started)
                model.train()
                optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
                inputs = layout(batch_images)
                started = time.perf_counter()
                for _ in range(args.steps):
                    optimizer.zero_grad()
                    F.cross_entropy(model(inputs), targets).backward()
                    optimizer.step()
                step[name].append((time.perf_counter() - started) / args.steps)
                model.eval()
        nchw, nhwc = (statistics.median(predict[name]) for name in layouts)
        step_nchw, step_nhwc = (statistics.median(step[name]) for name in layouts)
        print(f"\nchannels {channels}")
        print(f"  predict 10,000 images  NCHW {nchw:6.2f} s   NHWC {nhwc:6.2f} s   x{nchw / nhwc:.2f}")
        print(f"  training step (64)     NCHW {1e3 * step_nchw:6.1f} ms  NHWC {1e3 * step_nhwc:6.1f} ms  "
              f"x{step_nchw / step_nhwc:.2f}")  # fmt: skip
        print(f"  largest logit difference between layouts (2,048 images, evaluation): {difference:.2e}")
        trained = {}
        for name, layout in layouts.items():
            with seeded(0):
                copy = backbone.build_trainable(10)
            optimizer = torch.optim.Adam(copy.parameters(), lr=1e-3)
            labels_1280 = torch.from_numpy(np.asarray(test.targets[:1280], dtype=np.int64))
            for chunk, labels in zip(pixels[:1280].split(64), labels_1280.split(64)):
                optimizer.zero_grad()
                F.cross_entropy(copy(backbone.normalize_pixels(layout(chunk))), labels).backward()
                optimizer.step()
            trained[name] = torch.cat([p.detach().flatten() for p in copy.parameters()])
        gap = (trained["NCHW"] - trained["NHWC"]).abs().max().item()
        print(f"  largest weight difference after 20 training steps in either layout: {gap:.2e}")


if __name__ == "__main__":
    main()
