"""Measure the levers of the BNN (and MC dropout) on small Fashion-MNIST settings (issue 14).

One row per (variant, seed): accuracy, NLL, ECE, mean mutual information and the OOD AUROC
(Fashion-MNIST test -> scikit-learn ``digits``) by mutual information and by predictive
entropy, next to the deterministic network trained on the same images. A variant is a
method key plus options, given as JSON::

    nice -n 10 .venv/bin/python benchmarks/bnn_levers.py --per-class 80 --epochs 8 \\
        --variants '{"bnn": {"method": "bnn"}, "bnn-wide": {"method": "bnn", "posterior_init_std": 0.3}}'

The pool is ``fashion-mnist:train[50000:]`` as in ``synthaug demo`` (``--pool`` takes any
dataset spec, e.g. a folder of generated images); the test set is
the first ``--test-size`` images of ``fashion-mnist:test``. Rows are appended to ``--out``
(JSON lines) so that runs can be compared later.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from synthaug.data import load_dataset, subsample_per_class
from synthaug.methods import make_method
from synthaug.metrics import evaluate_predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", help="JSON {name: {method: key, **options}}")
    parser.add_argument("--summarize", type=Path, nargs="+", metavar="JSONL",
                        help="print mean ± std over seeds of earlier rows per file and variant (no training)")
    parser.add_argument("--per-class", type=int, default=80)
    parser.add_argument("--pool", default="fashion-mnist:train[50000:]")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--noise", type=float, default=0.0, help="fraction of training labels flipped")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bnn_levers.jsonl"))
    args = parser.parse_args()
    if args.summarize:
        for path in args.summarize:
            summarize(path)
        return
    if not args.variants:
        parser.error("give --variants (or --summarize)")
    torch.set_num_threads(args.threads)
    test = load_dataset(f"fashion-mnist:test[:{args.test_size}]")
    # A generated folder (e.g. the demo's ddpm images) lists its classes in its own order.
    pool = load_dataset(args.pool).with_classes(test.classes)
    ood = load_dataset("digits")
    for seed in [int(s) for s in args.seeds.split(",")]:
        train = subsample_per_class(pool, args.per_class, seed) if args.per_class else pool
        if args.noise:
            from methods_fashion_mnist import flip_labels

            train = flip_labels(train, args.noise, 1000 + seed)
        for name, options in json.loads(args.variants).items():
            options = dict(options)
            key = options.pop("method")
            common = {"epochs": args.epochs, "batch_size": args.batch_size, "patience": args.patience,
                      "seed": seed, "progress": None}
            method = make_method(key, **{**common, **options})
            started = time.perf_counter()
            method.fit(train)
            seconds = time.perf_counter() - started
            metrics = evaluate_predictions(
                method.predict_proba(test), test.targets, ood_probs=method.predict_proba(ood)
            )
            # The posterior width the fit ended at: mean sigma of the last Bayesian layer's bias.
            layers = [m for m in getattr(method, "model_", torch.nn.Module()).modules() if hasattr(m, "bias_sigma")]
            bias_sigma = (
                float(layers[-1].bias_sigma.detach().mean())
                if layers and layers[-1].bias_sigma is not None
                else None
            )
            row = {"bias_sigma": bias_sigma, "name": name, "method": key, "options": options, "seed": seed,
                   "per_class": args.per_class, "epochs": args.epochs, "noise": args.noise, "seconds": seconds,
                   **{k: metrics[k] for k in ("accuracy", "nll", "ece", "mean_mutual_information",
                                              "ood_auroc_mutual_information", "ood_auroc_entropy",
                                              "ood_auroc_max_prob")}}
            print(f"{name:28s} seed {seed}: acc {row['accuracy']:.4f} nll {row['nll']:.4f} ece {row['ece']:.4f} "
                  f"MI {row['mean_mutual_information']:.5f} AUROC MI {row['ood_auroc_mutual_information']:.3f} "
                  f"H {row['ood_auroc_entropy']:.3f} bias sigma {bias_sigma} "
                  f"maxp {row['ood_auroc_max_prob']:.3f} ({seconds:.0f} s)",
                  flush=True)
            with args.out.open("a") as stream:
                stream.write(json.dumps(row) + "\n")


def summarize(path: Path) -> None:
    """Mean ± std over seeds of accuracy, NLL and the OOD AUROCs, per variant of ``path``."""
    groups: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        groups.setdefault(row["name"], []).append(row)
    print(f"{path}:")
    for name, rows in groups.items():
        def cell(key: str, rows: list[dict] = rows) -> str:
            values = [r[key] for r in rows]
            return f"{statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f}"
        print(f"  {name:28s} seeds {len(rows)}: acc {cell('accuracy')}  nll {cell('nll')}  "
              f"AUROC MI {cell('ood_auroc_mutual_information')}  AUROC entropy {cell('ood_auroc_entropy')}")


if __name__ == "__main__":
    main()
