"""Cost of each augmentation policy per training step of the ``cnn`` on 28x28 images (not part of CI).

One step = read a batch of 64 uint8 Fashion-MNIST images through the training path
(:class:`synthaug.methods.training.PreparedData`, in-memory fast path, that epoch's
per-example augmentation), normalise, MixUp/CutMix where asked, forward, loss, backward, Adam
update — what :func:`synthaug.methods.training.train_model` does per batch. Policies are timed
in interleaved rounds in one process (machine load hits all alike) and the median step time
is printed with its ratio to ``none``. Target (issue 18): ``flip-crop`` and ``trivialaugment``
no more than ~1.5x per demo unit; ``--unit`` also times a demo-sized unit (deterministic,
100 real images per class, 8 epochs at batch 64, prediction on the 10,000 test images).

Run: ``nice -n 10 .venv/bin/python benchmarks/augmentation_step.py [--rounds 30] [--threads 2] [--unit]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from synthaug.data import load_dataset, subsample_per_class
from synthaug.data.augment import parse_augment
from synthaug.data.loader import PixelBatches
from synthaug.methods import make_method
from synthaug.methods.training import PreparedData
from synthaug.models import make_backbone

POLICIES = ["none", "flip-crop", "trivialaugment", "randaugment", "autoaugment", "augmix", "mixup", "cutmix"]
BATCH_SIZE = 64  # the demo's


def make_step(policy: str, images, seed: int = 0):
    """A closure running one training step under ``policy`` (a new epoch every call)."""
    backbone = make_backbone("cnn")
    augmentation = parse_augment(policy)
    data = PreparedData(
        None,
        torch.from_numpy(images.targets.copy()),
        pixels=PixelBatches(
            images,
            backbone.pixel_decoder(),
            in_memory_array=backbone.pixel_array(),
            augmenter=augmentation.example_augmenter(),
        ),
        normalize=backbone.normalize_pixels,
    )
    torch.manual_seed(seed)
    model = backbone.build_trainable(10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    mixer = augmentation.batch_mixer(10)
    generator = torch.Generator().manual_seed(seed)
    epoch = [0]

    def step() -> None:
        index = torch.randperm(len(data), generator=generator)[:BATCH_SIZE]
        (inputs,) = data.batches([index], "cpu", epoch[0], seed)
        epoch[0] += 1
        targets = data.targets[index]
        if mixer is not None:
            inputs, targets = mixer(inputs, targets)
        loss = F.cross_entropy(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def time_unit(policy: str, train, test) -> float:
    started = time.perf_counter()
    method = make_method("deterministic", epochs=8, batch_size=BATCH_SIZE, patience=3, augment=policy, seed=0)
    method.fit(train).predict_proba(test)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="timed steps per policy")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per policy first")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--unit", action="store_true", help="also time a demo-sized unit per policy")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    pool = load_dataset("fashion-mnist:train[50000:]")
    steps = {policy: make_step(policy, pool) for policy in POLICIES}
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    times: dict[str, list[float]] = {policy: [] for policy in POLICIES}
    for _ in range(args.rounds):
        for policy, step in steps.items():
            started = time.perf_counter()
            step()
            times[policy].append(time.perf_counter() - started)
    print(
        f"cnn training step, batch {BATCH_SIZE}, 28x28, {torch.get_num_threads()} threads, "
        f"{args.rounds} interleaved rounds (median)"
    )
    baseline = statistics.median(times["none"])
    for policy in POLICIES:
        median = statistics.median(times[policy])
        print(f"  {policy:15s} {median * 1e3:8.2f} ms   x{median / baseline:5.2f}")
    if args.unit:
        train = subsample_per_class(pool, 100, seed=0)
        test = load_dataset("fashion-mnist:test")
        print("demo-sized unit (deterministic, 100 per class, 8 epochs, batch 64, predict 10,000 test images)")
        unit = {policy: time_unit(policy, train, test) for policy in ("none", "flip-crop", "trivialaugment")}
        for policy, seconds in unit.items():
            print(f"  {policy:15s} {seconds:8.2f} s    x{seconds / unit['none']:5.2f}")


if __name__ == "__main__":
    main()
