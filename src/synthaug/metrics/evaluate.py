"""All scalar metrics of a set of predictions in one flat dict, and the evaluation of
predictions files into ``metrics.json`` + ``reliability.png`` (what ``synthaug evaluate`` runs).
"""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import synthaug
from synthaug.errors import ConfigError, DataError
from synthaug.fileio import atomic_write_text, sha256_file, write_atomically
from synthaug.metrics._shapes import as_predictions, as_probability_samples, check_n_bins, mean_predictive
from synthaug.metrics.bootstrap import bootstrap_ci
from synthaug.metrics.calibration import _classwise_calibration_error, _reliability_diagram, expected_calibration_error
from synthaug.metrics.classification import (
    PROBABILITY_FLOOR,
    _accuracy,
    _brier_score,
    _negative_log_likelihood,
    accuracy,
    negative_log_likelihood,
)
from synthaug.metrics.ood import fpr_at_95_tpr, ood_aupr, ood_auroc
from synthaug.metrics.plots import ReliabilityDisplay
from synthaug.metrics.predictions import load_predictions
from synthaug.metrics.selective import _aurc
from synthaug.metrics.uncertainty import _expected_entropy, _mutual_information, _predictive_entropy

METRICS_FILE = "metrics.json"
RELIABILITY_FILE = "reliability.png"

# How each convention was chosen, written into metrics.json next to the numbers.
CONVENTIONS = {
    "probabilities": "classification and calibration metrics score the mean predictive, the average of the S samples",
    "nll": f"mean negative log-likelihood in nats; probabilities floored at {PROBABILITY_FLOOR:g} before the log",
    "brier": "mean over examples of the sum over classes of the squared error (range 0 to 2)",
    "ece": "top-label confidence; equal-width bins on [0, 1], right-closed (lo, hi] as in Guo et al. 2017 "
    "(confidence 1.0 in the last bin, 0 in the first); empty bins skipped",
    "mce": "largest |accuracy - confidence| over the non-empty bins of the ECE",
    "classwise_ece": "mean over classes of the ECE of p(class) against 1[label = class] (Kull et al. 2019)",
    "aurc": "area under the risk-coverage curve, confidence = max mean probability, ties accepted together "
    "(Geifman and El-Yaniv 2017)",
    "entropies": "mean over examples, in nats: predictive entropy (total) = expected entropy (aleatoric) + "
    "mutual information (epistemic)",
    "ood": "OOD is the positive class, a higher score means more OOD; scores: max_prob = 1 - max mean probability, "
    "entropy = predictive entropy, mutual_information; AUPR = average precision; fpr95 = FPR at 95% TPR",
    "confidence_intervals": "bootstrap over test examples, seeded: percentile for accuracy and NLL; basic (pivotal) "
    "for ECE, which is biased upward, more so on a resample (Kumar et al. 2019): its interval is for the calibration "
    "error, which the binned estimate overstates, so the estimate can lie above it",
}

# Metrics that are fractions of a set (or areas under a curve on [0, 1]).
_UNIT_INTERVAL_METRICS = ("accuracy", "ece", "mce", "classwise_ece", "aurc")
_UNIT_INTERVAL_PREFIXES = ("ood_auroc_", "ood_aupr_", "ood_fpr95_")


def metric_bounds(name: str) -> tuple[float, float]:
    """The range a metric of :func:`evaluate_predictions` can take, by name.

    A name may carry a set prefix (``"digits:ood_auroc_entropy"``). Fractions and areas lie in
    ``[0, 1]``; the Brier score in ``[0, 2]``; the NLL and the entropies are non-negative;
    a name this module does not produce is unbounded.
    """
    base = name.rsplit(":", 1)[-1]
    if base in _UNIT_INTERVAL_METRICS or base.startswith(_UNIT_INTERVAL_PREFIXES):
        return 0.0, 1.0
    if base == "brier":
        return 0.0, 2.0
    if base == "nll" or base.startswith("mean_"):
        return 0.0, float("inf")
    return float("-inf"), float("inf")


# Metrics given a bootstrap interval in metrics.json. Each depends on the mean predictive
# only, so they are bootstrapped on it (S = 1), which is S times cheaper and gives the same
# numbers.
INTERVAL_METRICS = ("accuracy", "ece", "nll")
# Binned ECE is biased upward, more so on a resample: its interval is the basic (pivotal) one,
# which does not sit above the estimate (see metrics.bootstrap.basic_interval).
INTERVAL_METHODS = {"accuracy": "percentile", "ece": "basic", "nll": "percentile"}


def evaluate_predictions(probs: Any, labels: Any, ood_probs: Any = None, n_bins: int = 15) -> dict[str, float]:
    """Compute every scalar metric of a set of predictions in one pass over the data.

    Keys (all floats): ``accuracy``, ``nll``, ``brier``, ``ece``, ``mce``, ``classwise_ece``,
    ``aurc``, ``mean_predictive_entropy``, ``mean_expected_entropy``,
    ``mean_mutual_information``; with ``ood_probs`` also ``ood_auroc_<score>``,
    ``ood_aupr_<score>`` and ``ood_fpr95_<score>`` for each score ``max_prob`` (1 - max mean
    probability), ``entropy`` (predictive entropy) and ``mutual_information``.
    The conventions are those of the individual functions in :mod:`synthaug.metrics`
    (uniform right-closed bins for the calibration errors; OOD is the positive class).

    Args:
        probs: In-distribution probabilities ``(S, N, C)`` or ``(N, C)``, numpy or torch.
        labels: Integer class indices ``(N,)``.
        ood_probs: Optional out-of-distribution probabilities ``(S', M, C)`` or ``(M, C)``
            from the same model (same classes).
        n_bins: Number of bins for ``ece``, ``mce`` and ``classwise_ece``.

    Returns:
        A flat ``dict[str, float]``.
    """
    n_bins = check_n_bins(n_bins)
    samples, labels = as_predictions(probs, labels)
    mean_probs = mean_predictive(samples)
    diagram = _reliability_diagram(mean_probs, labels, n_bins, "uniform")
    total_entropy = _predictive_entropy(mean_probs)
    metrics = {
        "accuracy": _accuracy(mean_probs, labels),
        "nll": _negative_log_likelihood(mean_probs, labels),
        "brier": _brier_score(mean_probs, labels),
        "ece": diagram.expected_calibration_error,
        "mce": diagram.maximum_calibration_error,
        "classwise_ece": _classwise_calibration_error(mean_probs, labels, n_bins, "uniform"),
        "aurc": _aurc(mean_probs, labels),
        "mean_predictive_entropy": float(total_entropy.mean()),
        "mean_expected_entropy": float(_expected_entropy(samples).mean()),
        "mean_mutual_information": float(_mutual_information(samples, total_entropy).mean()),
    }
    if ood_probs is not None:
        ood_samples = as_probability_samples(ood_probs, name="ood_probs")
        if ood_samples.shape[2] != samples.shape[2]:
            raise DataError(
                f"ood_probs: has {ood_samples.shape[2]} classes but probs has {samples.shape[2]}; "
                "both must come from the same model"
            )
        in_scores = _ood_scores(samples, mean_probs, total_entropy)
        ood_mean_probs = mean_predictive(ood_samples)
        ood_scores = _ood_scores(ood_samples, ood_mean_probs, _predictive_entropy(ood_mean_probs))
        for score_name, in_score in in_scores.items():
            metrics[f"ood_auroc_{score_name}"] = ood_auroc(in_score, ood_scores[score_name])
            metrics[f"ood_aupr_{score_name}"] = ood_aupr(in_score, ood_scores[score_name])
            metrics[f"ood_fpr95_{score_name}"] = fpr_at_95_tpr(in_score, ood_scores[score_name])
    return metrics


def _ood_scores(samples: np.ndarray, mean_probs: np.ndarray, total_entropy: np.ndarray) -> dict[str, np.ndarray]:
    """Per-example OOD scores, each oriented so that higher means more OOD."""
    return {
        "max_prob": 1.0 - mean_probs.max(axis=-1).astype(np.float64),
        "entropy": total_entropy,
        "mutual_information": _mutual_information(samples, total_entropy),
    }


def evaluate_prediction_files(
    predictions_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    ood_path: str | os.PathLike | None = None,
    n_bins: int = 15,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Evaluate a predictions file; write ``out_dir/metrics.json`` and ``out_dir/reliability.png``.

    ``metrics.json`` holds the :func:`evaluate_predictions` dict, bootstrap intervals for
    accuracy, ECE and NLL, the conventions, the settings and the input files (path and
    sha256). Both files are written in one step each (write, then rename), the JSON last, so a
    ``metrics.json`` always comes with its plot.

    Args:
        predictions_path: In-distribution predictions file (see
            :func:`synthaug.metrics.save_predictions`).
        out_dir: Output folder (created if missing).
        ood_path: Optional predictions file of the same model on out-of-distribution data.
        n_bins: Number of calibration bins.
        n_resamples: Bootstrap resamples per interval.
        confidence: Coverage of the intervals.
        seed: Seed of the bootstrap.
        overwrite: Replace an existing ``metrics.json`` / ``reliability.png`` in ``out_dir``.

    Returns:
        The report written to ``metrics.json``, as a dict.

    Raises:
        ConfigError: output files exist and ``overwrite`` is False, or a bad option.
        DataError: an unreadable or invalid predictions file.
    """
    n_bins = check_n_bins(n_bins)
    out_dir = Path(out_dir)
    existing = [out_dir / name for name in (METRICS_FILE, RELIABILITY_FILE) if (out_dir / name).exists()]
    if existing and not overwrite:
        raise ConfigError(
            f"{existing[0]}: already exists; pass --overwrite (overwrite=True) to replace it or choose another --out"
        )
    predictions = load_predictions(predictions_path)
    ood_predictions = load_predictions(ood_path, require_labels=False) if ood_path is not None else None
    if ood_predictions is not None and ood_predictions.probs.shape[2] != predictions.probs.shape[2]:
        raise DataError(
            f"{ood_path}: has {ood_predictions.probs.shape[2]} classes but {predictions_path} has "
            f"{predictions.probs.shape[2]}; both must be predictions of the same model"
        )

    metrics = evaluate_predictions(
        predictions.probs, predictions.labels,
        ood_probs=None if ood_predictions is None else ood_predictions.probs, n_bins=n_bins,
    )
    mean_probs = mean_predictive(predictions.probs)[np.newaxis]
    interval_functions = {
        "accuracy": accuracy,
        "ece": partial(expected_calibration_error, n_bins=n_bins),
        "nll": negative_log_likelihood,
    }
    intervals = {}
    for name in INTERVAL_METRICS:
        point, low, high = bootstrap_ci(
            interval_functions[name], mean_probs, predictions.labels,
            n_resamples=n_resamples, confidence=confidence, seed=seed, method=INTERVAL_METHODS[name],
        )
        intervals[name] = {"point": point, "low": max(low, 0.0), "high": high}  # each metric is >= 0

    display = ReliabilityDisplay.from_predictions(
        predictions.probs, predictions.labels, n_bins=n_bins, name=Path(predictions_path).name
    )
    report = {
        "metrics": metrics,
        "confidence_intervals": intervals,
        "settings": {
            "n_bins": n_bins,
            "bootstrap_resamples": n_resamples,
            "bootstrap_confidence": confidence,
            "bootstrap_seed": seed,
            "bootstrap_methods": {name: INTERVAL_METHODS[name] for name in INTERVAL_METRICS},
        },
        "conventions": CONVENTIONS,
        "inputs": {
            "predictions": _describe_file(predictions_path, predictions.probs.shape),
            "ood_predictions": None if ood_path is None else _describe_file(ood_path, ood_predictions.probs.shape),
            "classes": predictions.classes,
        },
        "synthaug_version": synthaug.__version__,
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(out_dir / RELIABILITY_FILE, lambda file: display.figure_.savefig(file, format="png", dpi=150))
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    atomic_write_text(out_dir / METRICS_FILE, text)
    return report


def _describe_file(path: str | os.PathLike, shape: tuple[int, ...]) -> dict[str, Any]:
    n_samples, n_examples, n_classes = shape
    return {
        "path": str(path),
        "sha256": sha256_file(path),
        "n_samples": n_samples,
        "n_examples": n_examples,
        "n_classes": n_classes,
    }
