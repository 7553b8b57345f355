"""Group summaries: the bootstrap over test examples of the seed-averaged metrics."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


def test_group_bootstrap_equals_the_generic_bootstrap_of_the_seed_averaged_metric(tmp_path) -> None:
    """The fast per-example bootstrap of a group (study/groups.py) against bootstrap_ci with the
    seed-averaged metric, on saved predictions of three seeds."""
    from functools import partial

    from synthaug.metrics import accuracy, bootstrap_ci, expected_calibration_error, save_predictions
    from synthaug.study.groups import RELIABILITY_BINS, _test_bootstrap

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 500)
    results, stack = [], []
    for seed in range(3):
        logits = rng.normal(size=(2, 500, 4)) + 2.0 * np.eye(4)[labels]
        probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        save_predictions(tmp_path / f"{seed}.npz", probs.astype(np.float32), labels, ["a", "b", "c", "d"])
        results.append(SimpleNamespace(predictions={"test": f"{seed}.npz"}))
        stack.append(probs.astype(np.float32).mean(0))
    intervals = _test_bootstrap(results, labels, tmp_path, resamples=50)

    def seed_mean(metric):
        return lambda members, y: float(np.mean([metric(member, y) for member in members]))

    metrics = {"accuracy": accuracy, "ece": partial(expected_calibration_error, n_bins=RELIABILITY_BINS)}
    for name, metric in metrics.items():
        method = "basic" if name == "ece" else "percentile"
        point, low, high = bootstrap_ci(seed_mean(metric), np.stack(stack), labels, n_resamples=50, seed=0,
                                        method=method)  # fmt: skip
        interval = intervals[name]
        assert (interval.point, interval.low, interval.high) == pytest.approx((point, max(low, 0.0), high), abs=1e-12)
