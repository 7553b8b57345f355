"""Guided generation (issue 11): are variants of the few real images worth more than text-only images?

Not run in CI. Fashion-MNIST, offline, the shipped ``ddpm`` generator, ``cnn`` +
``deterministic``, several seeds. The real pool is Fashion-MNIST training images
50,000-59,499 (never seen by the generator), validation 59,500-59,999, test the official
test set. For every seed and every size ``n`` of real images per class:

- ``real``: the ``n`` real images per class drawn with that seed;
- ``real+text``: plus ``--per-class`` text-to-image images per class (run seed = seed);
- ``real+guided@s``: plus as many SDEdit variants of *those same* ``n`` images per class at
  strength ``s`` (image ``j`` of a class is a variant of real image ``j mod n``);
- ``real+tuned`` (with ``--tuned``): plus as many text-to-image images from the shipped
  generator fine-tuned on those ``n`` images per class (``train-generator --init-from``);
- synthetic-only at the largest size: ``text``, ``guided@s`` (and ``tuned``) without the real
  images, against ``real`` at that size (an exchange rate of at least 1 synthetic per real).

Every guided set is checked against the test and validation sets (leakage guard, by pixel
content) and for near-copies of test images with the audit's check
(:func:`synthaug.audit.find_copies`); near-copies of their own real sources are counted too.

Targets: at 10 real/class, ``real+guided`` (best strength) beats ``real+text`` by >= 2
accuracy points with the paired 95 % interval above 0; at 30 real/class by >= 1 point;
synthetic-only guided from 30 real/class reaches the accuracy of 30 real/class; no guided
image is a near-copy of a test image. Paired intervals are reported two ways: Student's t
over seeds (as the study does) and a bootstrap over test images of the seed-averaged
per-image correctness.

Also written: ``samples.png`` (one real image per class beside its variants at each
strength and a text-only image) and ``diversity.txt`` (within-class similarity and test
coverage of each set in the audit's thumbnail space), from the first seed's sets.

Results of record (``benchmarks/results/guided/``): 5 seeds on one H200, one process per
seed (``--seeds S --tuned --real-share 0.5``, about 100 s each, in parallel), then
``--summary-only`` over the same folder::

    for s in 0 1 2 3 4; do python benchmarks/guided.py --seeds $s --tuned --real-share 0.5 --out R & done; wait
    python benchmarks/guided.py --summary-only --seeds 0,1,2,3,4 --tuned --real-share 0.5 --out R

On a CPU the fine-tuning (``--tuned``) and 37 trainings per seed take about half an hour
per seed; a CPU run of the main comparison::

    nice -n 10 .venv/bin/python benchmarks/guided.py --strengths 0.75,0.9,0.25/0.5/0.75/1 --out /tmp/guided

Smoke run::

    nice -n 10 .venv/bin/python benchmarks/guided.py --seeds 0 --sizes 10 --per-class 10 \\
        --strengths 0.5 --epochs 1 --out /tmp/guided-smoke
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import synthaug
from synthaug.audit import find_copies
from synthaug.data import ImageDataset, concat_datasets, load_dataset, subsample_per_class
from synthaug.generate import generate_dataset
from synthaug.generate.guided import check_no_leakage, load_guidance
from synthaug.methods import make_method
from synthaug.study.stats import paired_bootstrap_difference, paired_difference, t_interval


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="results folder (rerun resumes)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--sizes", default="10,30", help="real images per class, comma-separated")
    parser.add_argument("--per-class", type=int, default=80, help="synthetic images per class")
    parser.add_argument("--strengths", default="0.25,0.5,0.75,0.9,0.25/0.5/0.75/1",
                        help="SDEdit strengths to compare; A/B/C draws one of them per image (DA-Fusion)")
    parser.add_argument("--real-share", type=float, default=None,
                        help="also train every real+synthetic arm with the real images weighted to this share "
                        "of the loss (arms marked 'w'; DA-Fusion mixes synthetic images with probability 0.5)")
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps of the whole schedule")
    parser.add_argument("--epochs", type=int, default=8, help="cnn training epochs")
    parser.add_argument("--tuned", action="store_true", help="also compare generators fine-tuned on the real images")
    parser.add_argument("--tune-steps", type=int, default=300, help="fine-tuning steps of --tuned")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--summary-only", action="store_true",
                        help="only summarise the runs and sets already in --out (after parallel processes)")
    return parser.parse_args(argv)


def accuracy_and_correct(train: ImageDataset, val: ImageDataset, test: ImageDataset, seed: int, args) -> np.ndarray:
    """Per-test-image correctness (0/1) of a ``cnn`` trained on ``train``."""
    method = make_method("deterministic", backbone="cnn", epochs=args.epochs, batch_size=64, patience=3,
                         seed=seed, device=args.device)  # fmt: skip
    method.fit(train, val)
    probabilities = method.predict_proba(test)
    return (probabilities.mean(axis=0).argmax(axis=1) == test.targets).astype(np.int8)


def generated(folder: Path, classes: list[str]) -> ImageDataset:
    return load_dataset(str(folder)).with_classes(classes)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    seeds = [int(s) for s in args.seeds.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    strengths = args.strengths.split(",")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    # One file of runs per process (seed list), so that processes for other seeds can run at
    # the same time into the same folder; every file is read back.
    rows_path = out / f"runs-seeds{'_'.join(map(str, seeds))}.jsonl"
    done = {}
    for path in sorted(out.glob("runs-seeds*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            done[(row["arm"], row["size"], row["seed"])] = row

    pool = load_dataset("fashion-mnist:train[50000:59500]")
    val = load_dataset("fashion-mnist:train[59500:]")
    test = load_dataset("fashion-mnist:test")
    classes = pool.classes
    params = {"steps": args.steps}
    options = {"device": args.device}
    started = time.perf_counter()
    generation_seconds: dict[str, float] = {}
    copies: dict[str, dict[str, int]] = {}

    def run(arm: str, size: int, seed: int, train: ImageDataset) -> None:
        if (arm, size, seed) in done:
            return
        began = time.perf_counter()
        correct = accuracy_and_correct(train, val, test, seed, args)
        row = {"arm": arm, "size": size, "seed": seed, "n_train": len(train), "accuracy": float(correct.mean()),
               "seconds": round(time.perf_counter() - began, 2), "correct": correct.tolist()}  # fmt: skip
        done[(arm, size, seed)] = row
        with rows_path.open("a") as stream:
            stream.write(json.dumps(row) + "\n")
        print(f"seed {seed} n {size:3d} {arm:18s} acc {row['accuracy']:.4f} ({row['seconds']:.0f} s)", flush=True)

    def mixed(real: ImageDataset, synthetic: ImageDataset, arm: str, size: int, seed: int) -> None:
        run(arm, size, seed, concat_datasets([real, synthetic]))
        if args.real_share is not None:
            total = len(real) + len(synthetic)
            weights = [args.real_share * total / len(real), (1 - args.real_share) * total / len(synthetic)]
            run(arm + " w", size, seed, concat_datasets([real, synthetic], weights))

    def make(name: str, **kwargs: Any) -> ImageDataset:
        folder = out / "sets" / name
        began = time.perf_counter()
        summary = generate_dataset(folder, classes, args.per_class, params=params, backend_options=options, **kwargs)
        if summary["generated"]:
            generation_seconds[name] = round(time.perf_counter() - began, 2)
        return generated(folder, classes)

    for seed in [] if args.summary_only else seeds:
        text = make(f"text-seed{seed}", seed=seed)
        for size in sizes:
            real = subsample_per_class(pool, size, seed)
            run("real", size, seed, real)
            mixed(real, text, "real+text", size, seed)
            synthetic_only = size == max(sizes)
            if synthetic_only:
                run("text", size, seed, text)
            for strength in strengths:
                guidance = load_guidance(real, classes, strength.replace("/", ","))
                check_no_leakage(guidance.content_hashes(), {"test": test, "validation": val})
                name = f"guided-n{size}-s{strength.replace('/', '+')}-seed{seed}"
                guided = make(name, seed=seed, init_images=guidance)
                if name not in copies:
                    of_test = find_copies(guided, test)
                    of_source = find_copies(guided, real)
                    copies[name] = {"near_copies_of_test": int(of_test.found.sum()),
                                    "near_copies_of_source": int(of_source.found.sum())}  # fmt: skip
                mixed(real, guided, f"real+guided@{strength}", size, seed)
                if synthetic_only:
                    run(f"guided@{strength}", size, seed, guided)
            if args.tuned:
                from synthaug.study.tuning import CHECK_FILE, tune_and_check

                tuned_dir = out / "tuned" / f"n{size}-seed{seed}"
                if not (tuned_dir / CHECK_FILE).is_file():
                    began = time.perf_counter()
                    tune_and_check(real, tuned_dir, steps=args.tune_steps, seed=seed, device=args.device)
                    generation_seconds[f"tune-n{size}-seed{seed}"] = round(time.perf_counter() - began, 2)
                copies[f"tuned-n{size}-seed{seed}"] = json.loads((tuned_dir / CHECK_FILE).read_text())
                tuned = make(f"tuned-n{size}-seed{seed}", seed=seed, model=str(tuned_dir))
                mixed(real, tuned, "real+tuned", size, seed)
                if synthetic_only:
                    run("tuned", size, seed, tuned)

    if args.summary_only:
        copies.update(check_folders(out, test))
    all_seeds = sorted({seed for (_, _, seed) in done})
    summary = summarise(done, all_seeds, sizes, strengths, args.tuned)
    summary.update(
        settings={key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        environment={"synthaug": synthaug.__version__, "torch": torch.__version__, "python": platform.python_version(),
                     "device": args.device, "cuda": torch.cuda.get_device_name() if args.device == "cuda" else None},
        generation_seconds=generation_seconds,
        copies=copies,
        seconds=round(time.perf_counter() - started, 1),
    )  # fmt: skip
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = format_summary(summary)
    (out / "summary.txt").write_text(text)
    if (out / "sets" / f"text-seed{all_seeds[0] if all_seeds else 0}").is_dir():
        sample_figure(out / "sets", min(sizes), strengths, all_seeds[0] if all_seeds else 0, out / "samples.png")
        table = diversity_table(out / "sets", pool, test, min(sizes), strengths, all_seeds[0] if all_seeds else 0)
        (out / "diversity.txt").write_text(table)
        text += "\n" + table
    print(text)


def diversity_table(
    sets: Path, pool: ImageDataset, test: ImageDataset, size: int, strengths: list[str], seed: int
) -> str:
    """How far each training set reaches into the test distribution, per class, in the
    audit's thumbnail space: the mean correlation between two images of a class (higher =
    less diverse) and the share of test images whose nearest image of their class in the
    set correlates >= 0.9 ("test coverage")."""
    from synthaug.audit.duplicates import thumbnails

    test_thumbnails = thumbnails(test)

    def measure(dataset: ImageDataset) -> tuple[float, float]:
        dataset = dataset.with_classes(test.classes)
        vectors = thumbnails(dataset)
        within, coverage = [], []
        for label in range(len(test.classes)):
            own = vectors[dataset.targets == label]
            similarity = own @ own.T
            count = len(own)
            within.append(float((similarity.sum() - similarity.diagonal().sum()) / (count * (count - 1))))
            nearest = (test_thumbnails[test.targets == label] @ own.T).max(dim=1).values
            coverage.append(float((nearest >= 0.9).float().mean()))
        return float(np.mean(within)), float(np.mean(coverage))

    candidates = [(f"real {size}/class", subsample_per_class(pool, size, seed)),
                  ("real 80/class", subsample_per_class(pool, 80, seed)),
                  (f"text-seed{seed}", generated(sets / f"text-seed{seed}", test.classes))]  # fmt: skip
    for strength in strengths:
        name = f"guided-n{size}-s{strength.replace('/', '+')}-seed{seed}"
        candidates.append((name, generated(sets / name, test.classes)))
    lines = [f"diversity at {size} real/class, seed {seed} (thumbnail space of the audit's near-copy check)", "",
             f"  {'set':40s} within-class similarity   test coverage (nearest >= 0.9)"]  # fmt: skip
    for name, dataset in candidates:
        within, coverage = measure(dataset)
        lines.append(f"  {name:40s} {within:.3f}                     {coverage:.3f}")
    return "\n".join(lines) + "\n"


def sample_figure(sets: Path, size: int, strengths: list[str], seed: int, path: Path, classes: int = 5) -> None:
    """Real images (first column), their variants at each strength, and a text-only image.

    Slot ``j`` of every guided set is a variant of the same real image with the same noise
    seed, so a row shows one real image going from close copies (low strength) to new
    images (high strength).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    def rows_of(name: str) -> dict[tuple[str, int], dict[str, Any]]:
        folder = sets / name
        rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
        return {(row["label"], row["index"]): {**row, "path": folder / row["file_name"]} for row in rows}

    guided = {strength: rows_of(f"guided-n{size}-s{strength.replace('/', '+')}-seed{seed}") for strength in strengths}
    text = rows_of(f"text-seed{seed}")
    labels = list(dict.fromkeys(label for label, _ in text))[:classes]
    real = {}
    pool = load_dataset("fashion-mnist:train")
    columns = ["real", *(f"s={strength}" for strength in strengths), "text only"]
    figure, axes = plt.subplots(len(labels), len(columns), figsize=(1.1 * len(columns), 1.2 * len(labels)))
    for row, label in enumerate(labels):
        first = guided[strengths[0]][(label, 0)]["init_image"]["file_name"]
        real[label] = pool[int(first.split("[")[1].rstrip("]"))][0]
        images = [real[label], *(Image.open(guided[s][(label, 0)]["path"]) for s in strengths),
                  Image.open(text[(label, 0)]["path"])]  # fmt: skip
        for column, image in enumerate(images):
            axis = axes[row, column]
            axis.imshow(image, cmap="gray", vmin=0, vmax=255)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(columns[column], fontsize=7)
        axes[row, 0].set_ylabel(label, fontsize=7)
    figure.suptitle(f"{size} real/class, seed {seed}: one real image and its SDEdit variants", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def check_folders(out: Path, test: ImageDataset) -> dict[str, dict[str, Any]]:
    """Near-copy counts of every finished guided set, and the tuned generators' own checks."""
    from synthaug.data import load_image_folder

    copies: dict[str, dict[str, Any]] = {}
    for folder in sorted((out / "sets").glob("guided-*")):
        try:
            guided = load_image_folder(folder)
        except Exception as error:  # an unfinished set of a process stopped at its time limit
            copies[folder.name] = {"error": str(error)[:200]}
            continue
        copies[folder.name] = {"images": len(guided), "near_copies_of_test": int(find_copies(guided, test).found.sum())}
    for check in sorted((out / "tuned").glob("*/tuning_check.json")):
        copies[f"tuned-{check.parent.name}"] = json.loads(check.read_text())
    return copies


def summarise(done: dict, seeds: list[int], sizes: list[int], strengths: list[str], tuned: bool) -> dict[str, Any]:
    """Means, paired differences against ``real+text``, the best strength and the targets."""

    def per_seed(arm: str, size: int) -> dict[int, float]:
        return {seed: done[(arm, size, seed)]["accuracy"] for seed in seeds if (arm, size, seed) in done}

    def correct(arm: str, size: int) -> np.ndarray:
        return np.array([done[(arm, size, seed)]["correct"] for seed in seeds if (arm, size, seed) in done])

    arms: dict[str, dict[str, Any]] = {}
    comparisons: dict[str, dict[str, Any]] = {}
    for size in sizes:
        names = ["real", "real+text", *(f"real+guided@{s}" for s in strengths), *(["real+tuned"] if tuned else [])]
        names += [f"{name} w" for name in names if name != "real"]
        if size == max(sizes):
            names += ["text", *(f"guided@{s}" for s in strengths), *(["tuned"] if tuned else [])]
        for name in names:
            values = per_seed(name, size)
            if values:
                arms[f"{name}|{size}"] = {"arm": name, "size": size, **t_interval(list(values.values())).to_dict()}
        for name in names:
            baseline = "real+text w" if name.endswith(" w") else "real+text"
            if not name.startswith("real+") or name == baseline or not per_seed(name, size):
                continue
            comparisons[f"{name}|{size}"] = _compare(name, baseline, size, per_seed, correct)
        if size == max(sizes):
            for name in ["text", *(f"guided@{s}" for s in strengths), *(["tuned"] if tuned else [])]:
                if per_seed(name, size):
                    comparisons[f"{name}|{size}"] = _compare(name, "real", size, per_seed, correct)
    targets = {}
    for size, needed in ((10, 0.02), (30, 0.01)):
        candidates = [c for c in comparisons.values() if c["size"] == size and c["arm"].startswith("real+guided")]
        if candidates:
            best = max(candidates, key=lambda c: c["difference"]["mean"])
            targets[f"guided_beats_text_at_{size}"] = {
                "best": best["arm"], "difference": best["difference"]["mean"], "t_low": best["difference"]["low"],
                "bootstrap_low": best["bootstrap"][1], "needed": needed,
                "holds": best["difference"]["mean"] >= needed and best["difference"]["low"] > 0,
            }  # fmt: skip
    synthetic = [c for key, c in comparisons.items() if c["arm"].startswith("guided@")]
    if synthetic:
        best = max(synthetic, key=lambda c: c["difference"]["mean"])
        targets["synthetic_only_guided_reaches_real"] = {
            "best": best["arm"], "size": best["size"], "difference_to_real": best["difference"]["mean"],
            "holds": best["difference"]["mean"] >= 0,
        }  # fmt: skip
    return {"arms": arms, "comparisons": comparisons, "targets": targets}


def _compare(arm: str, baseline: str, size: int, per_seed, correct) -> dict[str, Any]:
    difference = paired_difference(per_seed(arm, size), per_seed(baseline, size))
    point, low, high = paired_bootstrap_difference(correct(arm, size), correct(baseline, size))
    return {"arm": arm, "baseline": baseline, "size": size, "difference": difference.to_dict(),
            "bootstrap": [point, low, high]}  # fmt: skip


def format_summary(summary: dict[str, Any]) -> str:
    lines = ["accuracy on the Fashion-MNIST test set (mean over seeds, 95 % t-interval)", ""]
    for item in summary["arms"].values():
        lines.append(f"  n={item['size']:3d} {item['arm']:20s} {item['mean']:.4f} "
                     f"[{item['low']:.4f}, {item['high']:.4f}]  ({item['n']} seeds)")  # fmt: skip
    lines += ["", "paired differences (seed-paired t-interval | bootstrap over test images)", ""]
    for item in summary["comparisons"].values():
        d, b = item["difference"], item["bootstrap"]
        lines.append(f"  n={item['size']:3d} {item['arm']:20s} - {item['baseline']:10s} {d['mean']:+.4f} "
                     f"[{d['low']:+.4f}, {d['high']:+.4f}] | {b[0]:+.4f} [{b[1]:+.4f}, {b[2]:+.4f}]")  # fmt: skip
    lines += ["", "targets", ""]
    for name, target in summary["targets"].items():
        lines.append(f"  {name}: {json.dumps(target)}")
    lines += ["", "near-copies (audit check, thumbnail correlation >= 0.995) per guided set", ""]
    for name, counts in summary.get("copies", {}).items():
        lines.append(f"  {name}: {counts}")
    lines += ["", f"generation seconds: {json.dumps(summary.get('generation_seconds', {}))}",
              f"total seconds: {summary.get('seconds')}", ""]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
