"""Time every synthaug metric on large inputs against torchmetrics' calibration error.

For 1,000,000 x 10 predictions (S = 1) and for (30, 100,000, 10) probability samples, prints
the median wall time of each metric over ``--repeats`` runs and its ratio to torchmetrics'
``MulticlassCalibrationError`` (15 bins, L1) on the same input in the same process, the two
timed alternately. For the sampled input torchmetrics is given the mean over the 30 samples,
computed inside its timing. Every synthaug metric includes its input validation.
The target: ECE on 1,000,000 x 10 under 1 s and no slower than torchmetrics (ratio <= 1).

Run with ``nice -n 10 .venv/bin/python benchmarks/metrics.py``; not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torchmetrics.classification import MulticlassCalibrationError

from synthaug.metrics import (
    accuracy,
    aurc,
    bootstrap_ci,
    brier_score,
    classwise_calibration_error,
    evaluate_predictions,
    expected_calibration_error,
    expected_entropy,
    fpr_at_95_tpr,
    maximum_calibration_error,
    mutual_information,
    negative_log_likelihood,
    ood_aupr,
    ood_auroc,
    predictive_entropy,
    reliability_diagram,
    risk_coverage_curve,
)

N_BINS = 15
BOOTSTRAP_RESAMPLES = 5


def make_predictions(n_samples: int, n_examples: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Float32 softmax samples ``(S, N, C)`` around shared per-example logits, labels drawn from them."""
    generator = np.random.default_rng(seed)
    logits = generator.normal(scale=2.0, size=(1, n_examples, n_classes)).astype(np.float32)
    logits = logits + generator.normal(size=(n_samples, n_examples, n_classes)).astype(np.float32)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    cumulative = np.cumsum(probs.mean(axis=0), axis=-1)
    labels = (generator.random((n_examples, 1)) > cumulative).sum(axis=-1).clip(max=n_classes - 1)
    return probs, labels.astype(np.int64)


def paired_median_seconds(
    function: Callable[[], object], reference: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median wall times of ``function`` and ``reference``, run alternately ``repeats`` times each.

    Alternating the two (after one untimed warm-up call of each) exposes both to the same
    load on a shared machine, so their ratio is steadier than that of separate runs.
    """
    function()
    reference()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for callable_, bucket in ((function, times[0]), (reference, times[1])):
            start = time.perf_counter()
            callable_()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def benchmark(probs: np.ndarray, labels: np.ndarray, repeats: int, console: Console) -> None:
    n_samples, n_examples, n_classes = probs.shape
    probs_tensor, labels_tensor = torch.from_numpy(probs), torch.from_numpy(labels)
    torchmetrics_ece = MulticlassCalibrationError(num_classes=n_classes, n_bins=N_BINS, norm="l1")

    def run_torchmetrics() -> float:
        torchmetrics_ece.reset()
        torchmetrics_ece.update(probs_tensor.mean(dim=0), labels_tensor)
        return torchmetrics_ece.compute().item()

    half = n_examples // 2
    entropy = predictive_entropy(probs)
    in_scores, ood_scores = entropy[:half], entropy[half:]
    cases: dict[str, Callable[[], object]] = {
        "expected_calibration_error": lambda: expected_calibration_error(probs, labels, N_BINS),
        "expected_calibration_error (torch input)": lambda: expected_calibration_error(
            probs_tensor, labels_tensor, N_BINS
        ),
        "expected_calibration_error (quantile)": lambda: expected_calibration_error(probs, labels, N_BINS, "quantile"),
        "maximum_calibration_error": lambda: maximum_calibration_error(probs, labels, N_BINS),
        "classwise_calibration_error": lambda: classwise_calibration_error(probs, labels, N_BINS),
        "reliability_diagram": lambda: reliability_diagram(probs, labels, N_BINS),
        "accuracy": lambda: accuracy(probs, labels),
        "negative_log_likelihood": lambda: negative_log_likelihood(probs, labels),
        "brier_score": lambda: brier_score(probs, labels),
        "predictive_entropy": lambda: predictive_entropy(probs),
        "expected_entropy": lambda: expected_entropy(probs),
        "mutual_information": lambda: mutual_information(probs),
        "aurc": lambda: aurc(probs, labels),
        "risk_coverage_curve": lambda: risk_coverage_curve(probs, labels),
        "ood_auroc (N/2 vs N/2 entropy scores)": lambda: ood_auroc(in_scores, ood_scores),
        "ood_aupr (N/2 vs N/2 entropy scores)": lambda: ood_aupr(in_scores, ood_scores),
        "fpr_at_95_tpr (N/2 vs N/2 entropy scores)": lambda: fpr_at_95_tpr(in_scores, ood_scores),
        "evaluate_predictions (all, no OOD)": lambda: evaluate_predictions(probs, labels, n_bins=N_BINS),
        f"bootstrap_ci(ECE, {BOOTSTRAP_RESAMPLES} resamples)": lambda: bootstrap_ci(
            partial(expected_calibration_error, n_bins=N_BINS), probs, labels, n_resamples=BOOTSTRAP_RESAMPLES
        ),
    }
    ours, theirs = expected_calibration_error(probs, labels, N_BINS), run_torchmetrics()
    table = Table(
        title=f"probs ({n_samples}, {n_examples:,}, {n_classes}) float32, medians of {repeats} paired runs",
        caption=f"ECE value: synthaug {ours:.6f}, torchmetrics {theirs:.6f}",
    )
    table.add_column("metric")
    table.add_column("median ms", justify="right")
    table.add_column("torchmetrics ECE ms (paired)", justify="right")
    table.add_column("ratio", justify="right")
    results = {}
    for name, function in cases.items():
        seconds, reference = results[name] = paired_median_seconds(function, run_torchmetrics, repeats)
        table.add_row(name, f"{seconds * 1000:.1f}", f"{reference * 1000:.1f}", f"{seconds / reference:.2f}")
    console.print(table)
    seconds, reference = results["expected_calibration_error"]
    met = seconds < 1.0 and seconds <= reference
    console.print(
        f"ECE target (< 1 s and no slower than torchmetrics): {seconds * 1000:.0f} ms, "
        f"ratio {seconds / reference:.2f} -> {'met' if met else 'NOT met'}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per metric (median reported)")
    arguments = parser.parse_args()
    console = Console(width=110)
    console.print(
        f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    )
    for shape, seed in (((1, 1_000_000, 10), 0), ((30, 100_000, 10), 1)):
        probs, labels = make_predictions(*shape, seed=seed)
        benchmark(probs, labels, arguments.repeats, console)


if __name__ == "__main__":
    main()
