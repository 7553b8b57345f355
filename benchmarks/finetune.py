"""Streaming fine-tuning and feature extraction against a plain torchvision loop (not part of CI).

Builds RGB 160-px JPEG photos in the ImageFolder layout (10 classes; smooth random colour
fields, so JPEG decoding costs what a photo's does) at two sizes, 1,000 and 8,000 files,
and for each size and each pipeline runs, in a fresh subprocess (clean peak RSS):

- ``finetune``: resnet18 (random init), unfrozen, 160 px, batch 32, a bounded number of
  training steps (``--steps``). ``synthaug``: the method's own path — ``_prepare`` (files
  streamed by :class:`synthaug.data.loader.PixelBatches` workers), ``PreparedData.batches``,
  the method's optimiser (AdamW, the fine-tuning recipe) and the same per-batch work as
  :func:`synthaug.methods.training.train_model`. ``plain``: ``torchvision.datasets.ImageFolder``
  + ``DataLoader`` (same workers, resize + centre crop + ToTensor + Normalize per image),
  the same model and AdamW.
- ``features``: frozen resnet50 (random init), penultimate features of ``--steps`` batches of
  64 images in order: synthaug's extraction loader against the plain loop.

Prints images/s (after ``--warmup`` untimed batches, 3 by default) and the subprocess's peak RSS
(``ru_maxrss``, main process; loader workers are separate processes), and the targets:
synthaug / plain throughput >= 0.9, peak RSS at 8,000 within +20 % of that at 1,000.

Run: ``nice -n 10 .venv/bin/python benchmarks/finetune.py [--steps 30] [--out benchmarks/results/finetune.cpu.txt]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = (1_000, 8_000)
CLASSES = 10
SIDE = 160
WARMUP = 3  # untimed batches first (worker start-up, allocator); --warmup changes it


def build_folder(root: Path, count: int, seed: int = 0) -> Path:
    """``count`` RGB JPEGs of SIDE x SIDE, ``count / CLASSES`` per class folder."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for index in range(count):
        folder = root / f"class{index % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, size=(10, 10, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
        noise = rng.integers(-12, 13, size=(SIDE, SIDE, 3))
        pixels = np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:05d}.jpg", quality=90)
    return root


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def timed(batches, steps: int, work) -> float:
    """Images/s over ``steps`` batches after WARMUP untimed ones."""
    seen, started = 0, None
    for number, batch in enumerate(batches):
        if number == WARMUP:
            started, seen = time.perf_counter(), 0
        work(batch)
        seen += len(batch[0]) if isinstance(batch, (list, tuple)) else len(batch)
        if number + 1 == WARMUP + steps:
            break
    return seen / (time.perf_counter() - started)


def child(task: str, pipeline: str, root: Path, steps: int, workers: int) -> dict:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    batch_size = 32 if task == "finetune" else 64
    count = (WARMUP + steps) * batch_size
    if pipeline == "synthaug":
        from synthaug.data import load_image_folder
        from synthaug.methods import make_method
        from synthaug.methods.training import _make_optimizer
        from synthaug.models import make_backbone

        dataset = load_image_folder(root)
        model_name = "resnet18" if task == "finetune" else "resnet50"
        options = {"image_size": SIDE, "freeze": task != "finetune", "num_workers": workers}
        if task == "features":
            backbone = make_backbone(model_name, **options, batch_size=batch_size)
            network, _ = backbone._load_network()
            network.eval()
            from synthaug.data.loader import sequential_batches

            stream = backbone._stream(dataset)
            order = sequential_batches(len(dataset), batch_size)[: WARMUP + steps]

            @torch.no_grad()
            def extract(pixels):
                network(backbone.normalize_pixels(pixels))

            rate = timed(stream.batches(order), steps, extract)
        else:
            method = make_method(
                "deterministic",
                backbone=model_name,
                backbone_options=options,
                batch_size=batch_size,
                num_workers=workers,
            )
            method.backbone_ = make_backbone(model_name, **options)
            method.classes_ = list(dataset.classes)
            data = method._prepare(dataset, training=True)
            model = method.backbone_.build_trainable(CLASSES)
            model.train()
            optimizer = _make_optimizer(model, method.training_config())
            order = list(
                torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:count].split(batch_size)
            )
            targets = iter([data.targets[index] for index in order])

            def train_step(inputs):
                loss = F.cross_entropy(model(inputs), next(targets))
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            rate = timed(data.batches(order, "cpu", epoch=0, seed=0), steps, train_step)
    else:
        import torchvision
        from torchvision import transforms

        transform = transforms.Compose(
            [
                transforms.Resize(SIDE),
                transforms.CenterCrop(SIDE),
                transforms.ToTensor(),
                transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
            ]
        )
        dataset = torchvision.datasets.ImageFolder(root, transform=transform)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=task == "finetune",
            num_workers=workers,
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers else None,
        )
        if task == "features":
            network = torchvision.models.resnet50()
            network.fc = torch.nn.Identity()
            network.eval()

            @torch.no_grad()
            def extract(batch):
                network(batch[0])

            rate = timed(loader, steps, extract)
        else:
            model = torchvision.models.resnet18(num_classes=CLASSES)
            model.train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)

            def train_step(batch):
                loss = F.cross_entropy(model(batch[0]), batch[1])
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            rate = timed(loader, steps, train_step)
    return {
        "task": task,
        "pipeline": pipeline,
        "images": len(dataset),
        "images_per_s": rate,
        "peak_rss_mb": peak_rss_mb(),
        "workers": workers,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed batches per run")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="untimed batches first")
    parser.add_argument("--workers", type=int, default=None, help="loader workers (default: synthaug's for 8,000)")
    parser.add_argument("--tasks", default="finetune,features")
    parser.add_argument("--out", type=Path, default=None, help="also write the printed figures here")
    parser.add_argument("--child", nargs=3, metavar=("TASK", "PIPELINE", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    globals()["WARMUP"] = args.warmup
    if args.child:
        task, pipeline, root = args.child
        print(json.dumps(child(task, pipeline, Path(root), args.steps, args.workers)))
        return
    from synthaug.data.loader import default_num_workers

    workers = default_num_workers(SIZES[-1]) if args.workers is None else args.workers
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        roots = {size: build_folder(Path(tmp) / f"photos{size}", size) for size in SIZES}
        results = []
        for task in args.tasks.split(","):
            for size in SIZES:
                for pipeline in ("plain", "synthaug"):
                    command = [
                        sys.executable,
                        __file__,
                        "--child",
                        task,
                        pipeline,
                        str(roots[size]),
                        "--steps",
                        str(args.steps),
                        "--warmup",
                        str(args.warmup),
                        "--workers",
                        str(workers),
                    ]
                    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                    results.append(json.loads(output.strip().splitlines()[-1]))
                    print(json.dumps(results[-1]), flush=True)
    by = {(r["task"], r["pipeline"], r["images"]): r for r in results}
    lines.append(
        f"finetune benchmark: {args.steps} timed batches per run after {args.warmup} untimed, "
        f"{workers} loader worker(s), "
        f"{results[0]['threads']} torch threads, 160-px RGB JPEGs"
    )
    for task in args.tasks.split(","):
        what = "fine-tune resnet18 (batch 32)" if task == "finetune" else "features of frozen resnet50 (batch 64)"
        lines.append(f"{what}:")
        for size in SIZES:
            plain, ours = by[(task, "plain", size)], by[(task, "synthaug", size)]
            lines.append(
                f"  {size:5d} files  plain {plain['images_per_s']:7.1f} img/s {plain['peak_rss_mb']:7.0f} MB   "
                f"synthaug {ours['images_per_s']:7.1f} img/s {ours['peak_rss_mb']:7.0f} MB   "
                f"throughput x{ours['images_per_s'] / plain['images_per_s']:.2f} (target >= 0.9)"
            )
        small, large = by[(task, "synthaug", SIZES[0])], by[(task, "synthaug", SIZES[-1])]
        growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1
        lines.append(f"  synthaug peak RSS 8,000 vs 1,000: {growth:+.1%} (target <= +20 %)")
    print("\n".join(lines))
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
