"""Every uncertainty method with the ``cnn`` backbone on Fashion-MNIST (not run in CI).

Settings (the study's third experiment in spirit):

- ``full``: the 60,000 training images;
- ``noisy``: the same with 20 % of the labels moved to another class chosen uniformly at
  random (the noise generator is seeded with ``noise_seed + seed`` and recorded in each row);
- ``small``: 100 images per class (``subsample_per_class`` with the run's seed).

Each method trains with the same optimiser budget (Adam, learning rate, batch size, epochs,
early stopping on a 10 % stratified validation split) and is evaluated on the 10,000 test
images, with out-of-distribution detection against scikit-learn's ``digits``. The OOD AUROC
uses the method's natural score: 1 - max probability for ``deterministic`` and
``temperature``, mutual information for the sampling methods; the predictive-entropy AUROC is
printed as well.

With ``--shift-severity K`` every model is also evaluated on the test set under each
corruption of :mod:`synthaug.data.shift` at severity K (Ovadia et al. 2019); the row gets
``shift_accuracy``, ``shift_nll`` and ``shift_ece`` (means over the corruptions) and the
per-corruption figures under ``shift``.

Rows are written to ``--out`` (JSON) after every run; rerunning with the same arguments skips
the runs already there, so an interrupted benchmark resumes.

Usage::

    nice -n 10 .venv/bin/python benchmarks/methods_fashion_mnist.py \\
        --methods deterministic,temperature --settings full --seeds 1
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

import synthaug
from synthaug.data import ImageDataset, load_dataset, subsample_per_class
from synthaug.data.shift import CORRUPTIONS
from synthaug.methods import METHODS, make_method
from synthaug.metrics import evaluate_predictions

SETTINGS = ("full", "noisy", "small")
NOISE_FRACTION = 0.2
SMALL_PER_CLASS = 100
# Methods whose predictive samples carry epistemic uncertainty: scored by mutual information.
SINGLE_NETWORK_METHODS = {"deterministic", "temperature"}
METRIC_COLUMNS = ["accuracy", "nll", "brier", "ece", "aurc", "ood_auroc", "ood_auroc_entropy", "train_seconds",
                  "seconds_per_epoch"]
SHIFT_COLUMNS = ["shift_accuracy", "shift_nll", "shift_ece"]


def flip_labels(dataset: ImageDataset, fraction: float, seed: int) -> ImageDataset:
    """A copy of ``dataset`` with ``fraction`` of the labels moved to a different class."""
    rng = np.random.default_rng(seed)
    targets = np.array(dataset.targets)
    flipped = rng.choice(len(targets), size=int(round(fraction * len(targets))), replace=False)
    # Adding 1..C-1 modulo C moves a label to one of the other classes, uniformly.
    targets[flipped] = (targets[flipped] + rng.integers(1, len(dataset.classes), len(flipped))) % len(dataset.classes)
    return ImageDataset.from_arrays(dataset.as_array(), targets, dataset.classes,
                                    name=f"{dataset.name} ({fraction:.0%} labels flipped, seed {seed})")


def training_set(setting: str, train: ImageDataset, seed: int, noise_seed: int) -> ImageDataset:
    if setting == "noisy":
        return flip_labels(train, NOISE_FRACTION, noise_seed + seed)
    if setting == "small":
        return subsample_per_class(train, SMALL_PER_CLASS, seed)
    return train


def method_key_and_options(name: str, args: argparse.Namespace) -> tuple[str, dict]:
    """Registry key and options of a benchmarked method name.

    A name is a registry key (``bnn``) or a variant named in ``--method-options`` whose
    options carry the key, e.g. ``{"bnn-last": {"method": "bnn", "bayesian_layers": "last"}}``,
    so that several settings of one method can be compared in one table.
    """
    options = dict(json.loads(args.method_options).get(name, {}))
    key = options.pop("method", name)
    if key not in METHODS:
        raise SystemExit(f"--methods: {name!r} is neither a method ({', '.join(METHODS.keys())}) "
                         "nor a variant with a \"method\" key in --method-options")
    return key, options


def run_one(name: str, setting: str, seed: int, args: argparse.Namespace, data: dict) -> dict:
    key, method_options = method_key_and_options(name, args)
    options = {"seed": seed, "epochs": args.small_epochs if setting == "small" else args.epochs,
               "batch_size": args.batch_size, "learning_rate": args.learning_rate,
               **method_options}
    method = make_method(key, **options)
    train = training_set(setting, data["train"], seed, args.noise_seed)
    started = time.perf_counter()
    method.fit(train)
    train_seconds = time.perf_counter() - started
    metrics = evaluate_predictions(method.predict_proba(data["test"]), data["test"].targets,
                                   ood_probs=method.predict_proba(data["ood"]))
    shift = {}
    for corruption, shifted in data.get("shifted", {}).items():
        shifted_metrics = evaluate_predictions(method.predict_proba(shifted), shifted.targets)
        shift[corruption] = {k: shifted_metrics[k] for k in ("accuracy", "nll", "ece")}
    shift_means = {f"shift_{k}": statistics.mean(m[k] for m in shift.values()) for k in ("accuracy", "nll", "ece")} \
        if shift else {}
    natural_score = "max_prob" if key in SINGLE_NETWORK_METHODS else "mutual_information"
    trained = getattr(method, "base_method_", method)
    histories = getattr(trained, "histories_", None) or [getattr(trained, "history_", None)]
    epoch_seconds = [row["seconds"] for history in histories if history for row in history.epochs]
    return {
        "setting": setting, "method": name, "method_key": key, "seed": seed, "train_images": len(train),
        "noise_seed": args.noise_seed + seed if setting == "noisy" else None,
        "hyperparameters": {k: v for k, v in method.get_params().items() if k not in ("device", "progress")},
        "accuracy": metrics["accuracy"], "nll": metrics["nll"], "brier": metrics["brier"], "ece": metrics["ece"],
        "aurc": metrics["aurc"], "ood_score": natural_score, "ood_auroc": metrics[f"ood_auroc_{natural_score}"],
        "ood_auroc_entropy": metrics["ood_auroc_entropy"], "train_seconds": train_seconds,
        "epochs_run": [len(h.epochs) for h in histories if h],
        "seconds_per_epoch": statistics.mean(epoch_seconds) if epoch_seconds else float("nan"),
        "temperature": getattr(method, "temperature_", None), "all_metrics": metrics,
        "ood_auroc_mutual_information": metrics["ood_auroc_mutual_information"],
        "shift": shift, **shift_means,
    }


def summary_table(rows: list[dict]) -> Table:
    columns = METRIC_COLUMNS + [c for c in SHIFT_COLUMNS if any(c in row for row in rows)]
    table = Table(title="Fashion-MNIST, cnn backbone (mean ± std over seeds)")
    for column in ["setting", "method", "seeds", *columns]:
        table.add_column(column, justify="left" if column in ("setting", "method") else "right")
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["setting"], row["method"]), []).append(row)
    for (setting, method), group in groups.items():
        cells = []
        for column in columns:
            values = [row[column] for row in group if column in row]
            if not values:
                cells.append("–")
                continue
            spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.4f}{spread}")
        table.add_row(setting, method, str(len(group)), *cells)
    return table


def _mean(rows: list[dict], setting: str, method: str, column: str) -> float | None:
    values = [r[column] for r in rows if r["setting"] == setting and r["method"] == method and column in r]
    return statistics.mean(values) if values else None


def issue14_targets(rows: list[dict], bnn: str = "bnn") -> list[str]:
    """One line per target of issue 14 that these rows can check, saying whether it holds."""
    lines = []
    floors = {"full": 0.95, "noisy": 0.90, "small": 0.90}
    for setting, floor in floors.items():
        auroc = _mean(rows, setting, bnn, "ood_auroc")
        if auroc is None:
            continue
        ensemble = _mean(rows, setting, "ensemble", "ood_auroc")
        if ensemble is None:
            gap = ""
        else:
            within = "within" if auroc >= ensemble - 0.03 else "NOT within"
            gap = f", ensemble {ensemble:.3f} ({within} 0.03)"
        lines.append(f"{setting}: {bnn} MI AUROC {auroc:.3f} {'>=' if auroc >= floor else '<'} {floor}{gap}")
        accuracy, reference = _mean(rows, setting, bnn, "accuracy"), _mean(rows, setting, "deterministic", "accuracy")
        nll, reference_nll = _mean(rows, setting, bnn, "nll"), _mean(rows, setting, "deterministic", "nll")
        if reference is not None:
            lines.append(f"{setting}: accuracy {accuracy:.4f} vs deterministic {reference:.4f} "
                         f"({'within' if accuracy >= reference - 0.01 else 'NOT within'} 1 point); NLL {nll:.4f} vs "
                         f"{reference_nll:.4f} ({'<=' if nll <= reference_nll else '>'})")
        mc_dropout = _mean(rows, setting, "mc-dropout", "ood_auroc")
        if mc_dropout is not None:
            lines.append(f"{setting}: mc-dropout MI AUROC {mc_dropout:.3f}")
        reference_ece = _mean(rows, setting, "deterministic", "shift_ece")
        if reference_ece is not None:
            for method in sorted({r["method"] for r in rows if r["method"] not in SINGLE_NETWORK_METHODS}):
                ece = _mean(rows, setting, method, "shift_ece")
                if ece is not None:
                    lines.append(f"{setting}: shifted ECE {method} {ece:.4f} {'<' if ece < reference_ece else '>='} "
                                 f"deterministic {reference_ece:.4f}")
    return lines


def environment() -> dict:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return {"synthaug": synthaug.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "machine": platform.processor() or platform.machine(), "device": device}


def step_time_ratio(rows: list[dict], numerator: str = "bnn", denominator: str = "deterministic") -> float | None:
    """Mean seconds per epoch of ``numerator`` over ``denominator`` (full setting, same data)."""
    def mean_epoch(method: str) -> float | None:
        values = [r["seconds_per_epoch"] for r in rows if r["method"] == method and r["setting"] == "full"]
        return statistics.mean(values) if values else None

    top, bottom = mean_epoch(numerator), mean_epoch(denominator)
    return None if top is None or bottom is None else top / bottom


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS.keys()), help="comma-separated method keys")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated: full, noisy, small")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    parser.add_argument("--seed-list", default=None,
                        help="comma-separated seeds to run instead of 0..--seeds-1 (to split a run over processes)")
    parser.add_argument("--summarize", type=Path, nargs="+", default=None, metavar="JSON",
                        help="print the table of result files written by earlier runs (no training)")
    parser.add_argument("--epochs", type=int, default=15, help="epochs for full and noisy")
    parser.add_argument("--small-epochs", type=int, default=100, help="epochs for the 1,000-image setting")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--noise-seed", type=int, default=1000, help="label noise seed = this + run seed")
    parser.add_argument("--method-options", default="{}", help='JSON per method, e.g. {"ensemble": {"num_members": 5}}')
    parser.add_argument("--train-size", type=int, default=None,
                        help="use only the first N training images (smoke test)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--shift-severity", type=int, default=0,
                        help="also evaluate on every corruption of the test set at this severity (1-5; 0: off)")
    parser.add_argument("--test-size", type=int, default=None, help="use only the first N test images (smoke test)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/methods_fashion_mnist.json"))
    parser.add_argument("--bnn", default="bnn",
                        help="with --summarize: the method name whose rows are checked against the issue-14 targets")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(highlight=False, width=240)
    if args.summarize:
        summarize(args.summarize, console, bnn=args.bnn)
        return

    train_spec = "fashion-mnist:train" if args.train_size is None else f"fashion-mnist:train[:{args.train_size}]"
    test_spec = "fashion-mnist:test" if args.test_size is None else f"fashion-mnist:test[:{args.test_size}]"
    data = {"train": load_dataset(train_spec), "test": load_dataset(test_spec)}
    data["ood"] = load_dataset("digits")
    if args.shift_severity:
        data["shifted"] = {
            name: load_dataset(f"shift:{name}:{args.shift_severity}:{test_spec}") for name in CORRUPTIONS
        }
    config = {key: value for key, value in vars(args).items()
              if key not in ("out", "progress", "methods", "settings", "seeds", "seed_list", "summarize")}
    config["out"] = str(args.out)
    rows: list[dict] = []
    if args.out.is_file():
        previous = json.loads(args.out.read_text())
        previous_config = {k: v for k, v in previous["config"].items() if k != "threads"}
        if previous_config == {k: v for k, v in config.items() if k != "threads"}:
            rows = previous["rows"]
            console.print(f"resuming: {len(rows)} run(s) already in {args.out}")
        else:
            raise SystemExit(f"{args.out} holds results of other settings; pass another --out")
    done = {(r["setting"], r["method"], r["seed"]) for r in rows}
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))

    for setting in args.settings.split(","):
        for key in args.methods.split(","):
            for seed in seeds:
                if (setting, key, seed) in done:
                    continue
                row = run_one(key, setting, seed, args, data)
                rows.append(row)
                console.print(
                    f"{setting:6s} {key:14s} seed {seed}: accuracy {row['accuracy']:.4f}  NLL {row['nll']:.4f}  "
                    f"ECE {row['ece']:.4f}  OOD AUROC {row['ood_auroc']:.4f}  {row['train_seconds']:.0f} s "
                    f"({row['seconds_per_epoch']:.1f} s/epoch, epochs {row['epochs_run']})"
                )
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(
                    json.dumps({"config": config, "environment": environment(), "rows": rows}, indent=1)
                )

    console.print(summary_table(rows))
    ratio = step_time_ratio(rows)
    if ratio is not None:
        console.print(f"bnn / deterministic seconds per epoch (full): {ratio:.2f}")
    console.print(f"rows saved to {args.out}")


def summarize(paths: list[Path], console: Console, bnn: str = "bnn") -> None:
    """Print the table of several result files (e.g. one per process of a split run)."""
    rows: list[dict] = []
    for path in paths:
        saved = json.loads(path.read_text())
        env = saved["environment"]
        console.print(f"{path}: {len(saved['rows'])} run(s), {env.get('device', 'cpu')}, torch {env['torch']}, "
                      f"epochs {saved['config']['epochs']} (small {saved['config']['small_epochs']})")
        rows += saved["rows"]
    order = {name: i for i, name in enumerate(SETTINGS)}
    rows.sort(key=lambda r: (order.get(r["setting"], 99), r["method"], r["seed"]))
    console.print(summary_table(rows))
    ratio = step_time_ratio(rows, numerator=bnn)
    if ratio is not None:
        console.print(f"{bnn} / deterministic seconds per epoch (full): {ratio:.2f}")
    for line in issue14_targets(rows, bnn=bnn):
        console.print(line)


if __name__ == "__main__":
    main()
