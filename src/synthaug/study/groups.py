"""Groups of units: every seed of one regime x size x backbone x method, summarised.

A group's summary holds the mean and t-interval over seeds of every metric, a bootstrap over
test examples of the seed-averaged accuracy and ECE, and the data of its figures (reliability
bins, confusion counts and uncertainty histograms, pooled over seeds).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from synthaug.study.records import BootstrapInterval, GroupSummary, Histogram, ReliabilityBins, UnitResult
from synthaug.study.stats import t_interval

if TYPE_CHECKING:
    from synthaug.metrics import Predictions

__all__ = ["group_results", "seed_stack", "summarize_group"]

HISTOGRAM_BINS = 30
RELIABILITY_BINS = 15


def group_results(results: Sequence[UnitResult]) -> dict[str, list[UnitResult]]:
    """Results by group id, groups and seeds in grid order."""
    groups: dict[str, list[UnitResult]] = defaultdict(list)
    for result in results:
        groups[result.group_id].append(result)
    return dict(groups)


def _resolve(path: str, run_dir: Path) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else run_dir / candidate


def _load(result: UnitResult, set_name: str, run_dir: Path) -> Predictions:
    from synthaug.metrics import load_predictions

    return load_predictions(_resolve(result.predictions[set_name], run_dir))


def seed_stack(results: Sequence[UnitResult], set_name: str, run_dir: Path) -> np.ndarray:
    """Mean predictive of each seed's model on one evaluation set: ``(seeds, N, C)``."""
    return np.stack([_load(result, set_name, run_dir).probs.mean(axis=0) for result in results])


def _test_bootstrap(
    results: Sequence[UnitResult], labels: np.ndarray, run_dir: Path, resamples: int
) -> dict[str, BootstrapInterval]:
    """Bootstrap over test examples of the seed-averaged accuracy (percentile interval) and ECE
    (basic interval: binned ECE is biased upward, more so on a resample; see
    :func:`~synthaug.metrics.bootstrap.basic_interval`).

    Test examples are resampled jointly for every seed (the resamples of
    :func:`~synthaug.metrics.bootstrap_ci`), giving the test-set sampling interval of the mean
    over seeds. Each seed's per-example confidences, hits and bins are computed once
    (:class:`~synthaug.metrics.calibration.TopLabelBins`): re-reading the ``(seeds, N, C)``
    probabilities for every resample took 15 of the demo analysis's 17 s.
    """
    from synthaug.metrics.bootstrap import basic_interval, percentile_interval, resample_indices
    from synthaug.metrics.calibration import TopLabelBins

    seeds = [TopLabelBins.of(member, labels, RELIABILITY_BINS) for member in seed_stack(results, "test", run_dir)]
    metrics = {
        "accuracy": lambda rows: float(np.mean([seed.accuracy(rows) for seed in seeds])),
        "ece": lambda rows: float(np.mean([seed.expected_calibration_error(rows) for seed in seeds])),
    }
    draws = list(resample_indices(len(labels), resamples, seed=0))
    intervals = {}
    for name, metric in metrics.items():
        point, statistics = metric(slice(None)), [metric(rows) for rows in draws]
        if name == "ece":
            low, high = basic_interval(statistics, point)
            low = max(low, 0.0)
        else:
            low, high = percentile_interval(statistics)
        intervals[name] = BootstrapInterval(point, low, high)
    return intervals


def _histogram(values: dict[str, np.ndarray], upper: float) -> Histogram:
    edges = np.linspace(0.0, max(upper, 1e-6), HISTOGRAM_BINS + 1)
    return Histogram(
        edges=edges.tolist(),
        counts={name: np.histogram(np.clip(v, 0.0, edges[-1]), bins=edges)[0].tolist() for name, v in values.items()},
        means={name: float(v.mean()) for name, v in values.items()},
    )


def summarize_group(
    results: Sequence[UnitResult],
    labels: np.ndarray,
    ood_names: Sequence[str],
    n_classes: int,
    run_dir: Path,
    resamples: int,
) -> GroupSummary:
    """Summarise one group's seeds.

    Args:
        results: The group's units, one per seed.
        labels: ``(N,)`` test labels.
        ood_names: OOD sets whose scores get histograms.
        n_classes: Classes the models learn.
        run_dir: The run folder (prediction paths are relative to it).
        resamples: Bootstrap resamples over test examples.
    """
    from synthaug.metrics import (
        expected_entropy,
        metric_bounds,
        mutual_information,
        predictive_entropy,
        reliability_diagram,
    )

    names = sorted({name for result in results for name in result.metrics})
    test = [_load(result, "test", run_dir) for result in results]
    pooled_mean = np.concatenate([p.probs.mean(axis=0) for p in test])
    pooled_labels = np.tile(test[0].labels, len(test))
    diagram = reliability_diagram(pooled_mean, pooled_labels, n_bins=RELIABILITY_BINS)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (pooled_labels, pooled_mean.argmax(axis=1)), 1)

    sets = {"test": [p.probs for p in test]}
    sets.update({name: [_load(result, name, run_dir).probs for result in results] for name in ood_names})
    entropy = {name: np.concatenate([predictive_entropy(p) for p in probs]) for name, probs in sets.items()}
    information = {name: np.concatenate([mutual_information(p) for p in probs]) for name, probs in sets.items()}
    aleatoric = {name: np.concatenate([expected_entropy(p) for p in probs]) for name, probs in sets.items()}
    largest_information = max(float(v.max()) for v in information.values())
    return GroupSummary(
        key=results[0].key,
        seeds=[result.seed for result in results],
        train_seconds=float(np.sum([result.train_seconds for result in results])),
        metrics={
            name: t_interval([result.metrics.get(name, math.nan) for result in results], bounds=metric_bounds(name))
            for name in names
        },
        test_bootstrap=_test_bootstrap(results, labels, run_dir, resamples),
        reliability=ReliabilityBins(
            bin_edges=diagram.bin_edges.tolist(),
            bin_confidence=diagram.bin_confidence.tolist(),
            bin_accuracy=diagram.bin_accuracy.tolist(),
            bin_count=diagram.bin_count.tolist(),
            expected_calibration_error=float(diagram.expected_calibration_error),
            maximum_calibration_error=float(diagram.maximum_calibration_error),
            strategy=diagram.strategy,
        ),
        confusion=confusion.tolist(),
        histograms={
            "predictive_entropy": _histogram(entropy, math.log(n_classes)),
            "mutual_information": _histogram(information, largest_information),
            "expected_entropy": _histogram(aleatoric, math.log(n_classes)),
        },
        samples_per_seed=[int(p.probs.shape[0]) for p in test],
        under_trained=sum(bool(result.under_trained) for result in results),
    )
