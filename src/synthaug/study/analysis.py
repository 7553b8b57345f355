"""Everything the report shows, computed once from the results log and saved predictions.

:func:`analyze_study` reads ``results.jsonl`` rows and the prediction files they point to and
writes ``RUN_DIR/analysis.json`` (plus ``summary.csv`` and ``summary.md``): per-group means
and intervals, learning curves, exchange rates, paired comparisons, reliability bins,
confusion matrices, uncertainty histograms, sample synthetic images and provenance. The
report (:mod:`synthaug.report.build`) only draws this data, so ``synthaug report RUN_DIR``
re-renders without touching a model ("compute once, draw after").

A *group* is one regime x size x backbone x method; its seeds are the repetitions.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthaug.study.results import from_json_value, to_json_value
from synthaug.study.stats import (
    exchange_rate,
    paired_bootstrap_difference,
    paired_difference,
    size_to_match,
    t_interval,
)
from synthaug.study.text import interval_percent, interval_points, size_text

if TYPE_CHECKING:
    from synthaug.study.config import StudyConfig
    from synthaug.study.runner import StudyData

__all__ = ["analyze_study", "group_id", "summary_markdown", "write_summary_files", "write_summary_markdown"]

ANALYSIS_FILE = "analysis.json"
SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"

# Metrics compared between groups (higher-is-better flag used for the wording only).
COMPARED_METRICS = {"accuracy": True, "ece": False, "nll": False, "brier": False}
# Examples of synthetic images per class shown in the report.
SAMPLES_PER_CLASS = 6
HISTOGRAM_BINS = 30
RELIABILITY_BINS = 15

# The numbers He et al. (2023) and the original study report, quoted as context.
LITERATURE = {
    "exchange_rate": {
        "value": 5.0,
        "text": "He et al. (2023), “Is synthetic data from generative models ready for image "
        "recognition?” (ICLR), report that about 5 synthetic images are worth 1 real image on CIFAR-100.",
    },
    "original_study": [
        {"experiment": "DALL-E images → frozen ResNet152-V2 + head", "accuracy": 0.9106},
        {"experiment": "real images → same model", "accuracy": 0.9492},
        {"experiment": "DALL-E images → BNN", "accuracy": 0.1956},
    ],
}


def group_id(row: dict[str, Any]) -> str:
    """Readable id of a row's group: regime, size, backbone, method."""
    return f"{row['regime']}/n={row['size']}/{row['backbone']}/{row['method']}"


def _resolve(path: str, run_dir: Path) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else run_dir / candidate


def _mean_predictive(probs: np.ndarray) -> np.ndarray:
    return probs.mean(axis=0)


def _seed_stack(rows: Sequence[dict[str, Any]], set_name: str, run_dir: Path) -> np.ndarray:
    """Mean predictive of each seed's model on one evaluation set: ``(seeds, N, C)``."""
    from synthaug.metrics import load_predictions

    return np.stack(
        [_mean_predictive(load_predictions(_resolve(row["predictions"][set_name], run_dir)).probs) for row in rows]
    )


def _mean_over_seeds(metric: Callable[[np.ndarray, np.ndarray], float]) -> Callable[[np.ndarray, np.ndarray], float]:
    """A metric of ``(seeds, N, C)`` stacks: the mean over seeds of ``metric`` on each one.

    Handed to :func:`synthaug.metrics.bootstrap_ci`, which resamples test examples jointly for
    every seed, this gives the test-set sampling interval of the seed-averaged metric.
    """

    def averaged(stack: np.ndarray, labels: np.ndarray) -> float:
        return float(np.mean([metric(member, labels) for member in stack]))

    return averaged


def _metric_functions() -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    from synthaug.metrics import accuracy, expected_calibration_error

    return {"accuracy": accuracy, "ece": partial(expected_calibration_error, n_bins=RELIABILITY_BINS)}


def _histogram(values: dict[str, np.ndarray], upper: float) -> dict[str, Any]:
    edges = np.linspace(0.0, max(upper, 1e-6), HISTOGRAM_BINS + 1)
    return {
        "edges": edges.tolist(),
        "counts": {
            name: np.histogram(np.clip(v, 0.0, edges[-1]), bins=edges)[0].tolist() for name, v in values.items()
        },
        "means": {name: float(v.mean()) for name, v in values.items()},
    }


def _diagnostics(
    rows: Sequence[dict[str, Any]], run_dir: Path, ood_names: Sequence[str], n_classes: int
) -> dict[str, Any]:
    """Reliability bins, confusion matrix and uncertainty histograms of a group, pooled over seeds."""
    from synthaug.metrics import (
        expected_entropy,
        load_predictions,
        mutual_information,
        predictive_entropy,
        reliability_diagram,
    )

    test = [load_predictions(_resolve(row["predictions"]["test"], run_dir)) for row in rows]
    labels = test[0].labels
    pooled_mean = np.concatenate([_mean_predictive(p.probs) for p in test])
    pooled_labels = np.tile(labels, len(test))
    diagram = reliability_diagram(pooled_mean, pooled_labels, n_bins=RELIABILITY_BINS)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (pooled_labels, pooled_mean.argmax(axis=1)), 1)

    entropy = {"test": np.concatenate([predictive_entropy(p.probs) for p in test])}
    information = {"test": np.concatenate([mutual_information(p.probs) for p in test])}
    aleatoric = {"test": np.concatenate([expected_entropy(p.probs) for p in test])}
    for name in ood_names:
        ood = [load_predictions(_resolve(row["predictions"][name], run_dir)).probs for row in rows]
        entropy[name] = np.concatenate([predictive_entropy(p) for p in ood])
        information[name] = np.concatenate([mutual_information(p) for p in ood])
        aleatoric[name] = np.concatenate([expected_entropy(p) for p in ood])
    largest_information = max(float(v.max()) for v in information.values())
    return {
        "reliability": {
            "bin_edges": diagram.bin_edges.tolist(),
            "bin_confidence": diagram.bin_confidence.tolist(),
            "bin_accuracy": diagram.bin_accuracy.tolist(),
            "bin_count": diagram.bin_count.tolist(),
            "expected_calibration_error": diagram.expected_calibration_error,
            "maximum_calibration_error": diagram.maximum_calibration_error,
            "strategy": diagram.strategy,
        },
        "confusion": confusion.tolist(),
        "histograms": {
            "predictive_entropy": _histogram(entropy, math.log(n_classes)),
            "mutual_information": _histogram(information, largest_information),
            "expected_entropy": _histogram(aleatoric, math.log(n_classes)),
        },
        "samples_per_seed": [int(p.probs.shape[0]) for p in test],
    }


def _summaries(groups: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    summaries = {}
    for key, rows in groups.items():
        names = sorted({name for row in rows for name in row["metrics"]})
        first = rows[0]
        summaries[key] = {
            "group_id": key,
            **{
                field: first[field]
                for field in (
                    "regime",
                    "data",
                    "source",
                    "size",
                    "real_per_class",
                    "synthetic_per_class",
                    "backbone",
                    "method",
                    "method_key",
                )
            },
            "treatment": first.get("treatment"),  # absent from logs written before treatments existed
            "seeds": [row["seed"] for row in rows],
            "train_seconds": float(np.sum([row["train_seconds"] for row in rows])),
            "metrics": {
                name: t_interval([row["metrics"].get(name, math.nan) for row in rows]).to_dict() for name in names
            },
        }
    return summaries


def _curve(
    groups: dict[str, dict[str, Any]],
    regime: str,
    backbone: str,
    method: str,
    rows_by_group: dict[str, list[dict[str, Any]]],
) -> dict[str, Any] | None:
    members = sorted(
        (g for g in groups.values() if g["regime"] == regime and g["backbone"] == backbone and g["method"] == method),
        key=lambda g: g["size"],
    )
    if not members:
        return None
    return {
        "regime": regime,
        "data": members[0]["data"],
        "source": members[0]["source"],
        "backbone": backbone,
        "method": method,
        "sizes": [g["size"] for g in members],
        "accuracy": [g["metrics"]["accuracy"] for g in members],
        "ece": [g["metrics"]["ece"] for g in members],
        "by_seed": {
            str(g["size"]): {str(row["seed"]): row["metrics"]["accuracy"] for row in rows_by_group[g["group_id"]]}
            for g in members
        },
    }


def _by_seed(curve: dict[str, Any]) -> dict[int, dict[int, float]]:
    return {int(size): {int(seed): value for seed, value in seeds.items()} for size, seeds in curve["by_seed"].items()}


def _compare(
    kind: str,
    treatment: dict[str, Any],
    baseline: dict[str, Any],
    rows_by_group: dict[str, list[dict[str, Any]]],
    labels: np.ndarray,
    run_dir: Path,
    resamples: int,
) -> dict[str, Any]:
    """Paired differences (treatment - baseline) over seeds, and over test examples."""
    treatment_rows = rows_by_group[treatment["group_id"]]
    baseline_rows = rows_by_group[baseline["group_id"]]
    differences = {}
    for metric in COMPARED_METRICS:
        by_seed = paired_difference(
            {row["seed"]: row["metrics"][metric] for row in treatment_rows},
            {row["seed"]: row["metrics"][metric] for row in baseline_rows},
        )
        differences[metric] = {"seeds": by_seed.to_dict()}
    # Per-example correctness of each seed's model; the accuracy difference over test
    # examples is then a paired bootstrap of a mean.
    correct = [
        (_seed_stack(rows, "test", run_dir).argmax(axis=2) == labels).astype(np.float64)
        for rows in (treatment_rows, baseline_rows)
    ]
    point, low, high = paired_bootstrap_difference(*correct, resamples=resamples, seed=0)
    differences["accuracy"]["test_bootstrap"] = {"point": point, "low": low, "high": high}
    return {
        "kind": kind,
        "treatment": treatment["group_id"],
        "baseline": baseline["group_id"],
        "differences": differences,
    }


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _generator_provenance(
    name: str, directory: str, classes: Sequence[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What made a synthetic source (backend, model, prompts, cost) and sample images per class."""
    root = Path(directory)
    rows = _read_jsonl(root / "metadata.jsonl")
    settings_path = root / "generation.json"
    settings = json.loads(settings_path.read_text()) if settings_path.is_file() else None
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_class[str(row.get("label"))].append(row)
    samples = []
    for label in classes:
        for row in by_class.get(label, [])[:SAMPLES_PER_CLASS]:
            samples.append(
                {
                    "label": label,
                    "prompt": row.get("revised_prompt") or row.get("prompt"),
                    "path": str((root / row["file_name"]).resolve()),
                }
            )
    first = rows[0] if rows else {}
    provenance = {
        "name": name,
        "directory": str(root),
        "images": len(rows),
        "backend": first.get("backend"),
        "model": first.get("model"),
        "params": first.get("params"),
        "prompt_example": first.get("prompt"),
        "cost_usd": float(sum(float(row.get("cost_usd") or 0.0) for row in rows)),
        "synthaug_version": first.get("synthaug_version"),
        "settings": settings,
    }
    return provenance, samples


def _main_setting(config: StudyConfig, summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The comparison the report leads with: the first backbone, the baseline (first) method,
    the real-only regime against the first plain synthetic-only regime, at their largest common size."""
    real, synthetic = config.plain_regime("real"), config.plain_regime("synthetic")
    if real is None or synthetic is None:
        return {}
    backbone, method = config.backbones[0].name, config.methods[0].name

    def sizes(regime: str) -> set[int]:
        return {
            g["size"]
            for g in summaries.values()
            if (g["regime"], g["backbone"], g["method"]) == (regime, backbone, method)
        }

    common = sorted(sizes(real.name) & sizes(synthetic.name))
    if not common:
        return {}
    return {
        "size": common[-1],
        "backbone": backbone,
        "method": method,
        "source": config.regime_source(synthetic).name,
        "real_regime": real.name,
        "synthetic_regime": synthetic.name,
    }


def _treatment_facts(
    summaries: dict[str, dict[str, Any]], comparisons: list[dict[str, Any]], group_suffix: str = ""
) -> list[str]:
    """One sentence per "treatment vs plain" comparison whose treatment group ends with ``group_suffix``."""
    facts = []
    for comparison in comparisons:
        if comparison["kind"] == "treatment vs plain" and comparison["treatment"].endswith(group_suffix):
            treatment, baseline = summaries[comparison["treatment"]], summaries[comparison["baseline"]]
            difference = comparison["differences"]["accuracy"]["seeds"]
            facts.append(
                f"{treatment['regime']} vs {baseline['regime']} at {treatment['size']} per class "
                f"({treatment['treatment']}): accuracy {interval_points(difference)} points (mean [95 % CI])."
            )
    return facts


def _headline(
    config: StudyConfig,
    summaries: dict[str, dict[str, Any]],
    rates: list[dict[str, Any]],
    worth: list[dict[str, Any]],
    comparisons: list[dict[str, Any]],
) -> dict[str, Any]:
    """The question and the answer the report opens with, and the few facts behind it."""
    main = _main_setting(config, summaries)
    if not main:
        # No real-vs-synthetic pair to answer the question with (e.g. a study of synthetic
        # regimes only): the treatments still get their paired comparisons.
        return {"question": config.title, "answer": "", "facts": _treatment_facts(summaries, comparisons), "main": {}}
    size, backbone, method, source = main["size"], main["backbone"], main["method"], main["source"]

    def group(regime: str, method_name: str = method) -> dict[str, Any] | None:
        return summaries.get(f"{regime}/n={size}/{backbone}/{method_name}")

    real, synthetic = group(main["real_regime"]), group(main["synthetic_regime"])
    value = next(
        (
            w
            for w in worth
            if (w["synthetic_regime"], w["backbone"], w["method"]) == (main["synthetic_regime"], backbone, method)
        ),
        None,
    )
    if value is None:
        answer = f"Synthetic data from {source} was measured at one size only"
    elif value["status"] == "interpolated":
        m, n = value["synthetic_per_class"], value["real_per_class"]
        answer = (
            f"{m} {source} images per class are worth about {size_text(n)} real images per class "
            f"(≈ {m / n:.1f} synthetic images per real one)"
        )
    elif value["status"] == "not_reached":
        answer = (
            f"{value['synthetic_per_class']} {source} images per class beat every real-only size measured "
            f"(up to {value['largest_real']} per class)"
        )
    else:
        answer = (
            f"{value['synthetic_per_class']} {source} images per class are worth less than the smallest real set "
            f"measured ({value['smallest_real']} real images per class)"
        )
    real_accuracy = interval_percent(real["metrics"]["accuracy"])
    synthetic_accuracy = interval_percent(synthetic["metrics"]["accuracy"])
    answer += (
        f". Trained on {size} images per class, {backbone}/{method} reaches {real_accuracy} on the real test set "
        f"with real images and {synthetic_accuracy} with {source} images (mean ± 95 % CI over seeds)."
    )

    facts: list[str] = []
    for rate in rates:
        if (rate["synthetic_regime"], rate["backbone"], rate["method"]) != (main["synthetic_regime"], backbone, method):
            continue
        n = rate["real_per_class"]
        if rate["status"] == "not_reached":
            facts.append(
                f"Exchange rate at {n} real images per class: not reached — {rate['largest_synthetic']} synthetic "
                f"images per class stay below {100 * rate['real_accuracy']:.1f} %."
            )
            continue
        bound = "≤ " if rate["status"] == "at_or_below" else ""
        high = "not reached" if math.isinf(rate["rate_high"]) else f"{rate['rate_high']:.1f}"
        matched = size_text(rate["synthetic_per_class"])
        facts.append(
            f"Exchange rate at {n} real images per class: {bound}{rate['rate']:.1f} synthetic per real "
            f"({bound}{matched} synthetic images per class; 95 % interval {rate['rate_low']:.1f} – {high})."
        )
    for comparison in comparisons:
        if comparison["kind"] == "mixed vs real" and comparison["treatment"].endswith(f"/{backbone}/{method}"):
            treatment = summaries[comparison["treatment"]]
            difference = comparison["differences"]["accuracy"]["seeds"]
            facts.append(
                f"Adding {treatment['synthetic_per_class']} synthetic per class to {treatment['real_per_class']} "
                f"real ones: accuracy {interval_points(difference)} points (mean [95 % CI])."
            )
    facts += _treatment_facts(summaries, comparisons, f"/{backbone}/{method}")
    by_pair = {(c["treatment"], c["baseline"]): c for c in comparisons if c["kind"] == "method vs baseline"}
    for spec in config.methods[1:]:
        for regime in (main["real_regime"], main["synthetic_regime"]):
            treatment, baseline = group(regime, spec.name), group(regime)
            if treatment is None or baseline is None:
                continue
            comparison = by_pair[(treatment["group_id"], baseline["group_id"])]
            trained_on = "real" if regime == main["real_regime"] else source
            if spec.key == "temperature":
                before, after = (
                    interval_percent(baseline["metrics"]["ece"]),
                    interval_percent(treatment["metrics"]["ece"]),
                )
                facts.append(f"{spec.name} on {trained_on} images: ECE {before} → {after}.")
            elif spec.key == "bnn":  # the original study's third experiment; the others are in the tables
                difference = comparison["differences"]["accuracy"]["seeds"]
                nll_before, nll_after = baseline["metrics"]["nll"]["mean"], treatment["metrics"]["nll"]["mean"]
                facts.append(
                    f"{spec.name} vs {method} on {trained_on} images: accuracy {interval_points(difference)} points "
                    f"(mean [95 % CI]), NLL {nll_before:.3f} → {nll_after:.3f}."
                )
    return {"question": config.title, "answer": answer, "facts": facts, "main": main}


def analyze_study(
    config: StudyConfig, data: StudyData, rows: Sequence[dict[str, Any]], run_dir: str | os.PathLike[str]
) -> dict[str, Any]:
    """Compute everything the report shows and write ``analysis.json`` and ``summary.csv``.

    Args:
        config: The study config.
        data: The study's datasets (class names, test labels, synthetic folders).
        rows: One results row per unit.
        run_dir: The run folder (prediction paths in rows are relative to it).

    Returns:
        The analysis, as written to ``analysis.json``.
    """
    from synthaug.metrics import bootstrap_ci

    run_dir = Path(run_dir)
    rows_by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        rows_by_group[group_id(row)].append(row)
    summaries = _summaries(rows_by_group)
    labels = data.test.targets
    ood_names = list(data.ood)
    resamples = config.bootstrap_resamples

    for key, summary in summaries.items():
        summary.update(_diagnostics(rows_by_group[key], run_dir, ood_names, len(data.classes)))
        stack = _seed_stack(rows_by_group[key], "test", run_dir)
        summary["test_bootstrap"] = {}
        for metric, function in _metric_functions().items():
            interval = bootstrap_ci(_mean_over_seeds(function), stack, labels, n_resamples=resamples, seed=0)
            summary["test_bootstrap"][metric] = {"point": interval.point, "low": interval.low, "high": interval.high}

    curves: list[dict[str, Any]] = []
    for regime in config.regimes:
        for backbone in config.backbones:
            for method in config.regime_methods(regime):
                curve = _curve(summaries, regime.name, backbone.name, method.name, rows_by_group)
                if curve is not None and (len(curve["sizes"]) > 1 or regime.data == "mixed"):
                    curves.append(curve)

    real_regime = config.plain_regime("real")
    rates: list[dict[str, Any]] = []
    worth: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    if real_regime is not None:
        real_curves = {(c["backbone"], c["method"]): c for c in curves if c["regime"] == real_regime.name}
        at = config.exchange_rate_at or real_regime.sizes
        for curve in curves:
            if curve["data"] != "synthetic":
                continue
            real = real_curves.get((curve["backbone"], curve["method"]))
            if real is None:
                continue
            for n in at:
                if n not in real["sizes"]:
                    continue
                rate = exchange_rate(_by_seed(real), _by_seed(curve), n, resamples=resamples, seed=0)
                rates.append(
                    {
                        "synthetic_regime": curve["regime"],
                        "source": curve["source"],
                        "backbone": curve["backbone"],
                        "method": curve["method"],
                        "largest_synthetic": max(curve["sizes"]),
                        **rate.to_dict(),
                    }
                )
            largest = max(curve["sizes"])
            synthetic_accuracy = curve["accuracy"][-1]["mean"]
            match = size_to_match(real["sizes"], [a["mean"] for a in real["accuracy"]], synthetic_accuracy)
            worth.append(
                {
                    "synthetic_regime": curve["regime"],
                    "source": curve["source"],
                    "backbone": curve["backbone"],
                    "method": curve["method"],
                    "synthetic_per_class": largest,
                    "synthetic_accuracy": synthetic_accuracy,
                    "real_per_class": match.size,
                    "status": match.status,
                    "smallest_real": min(real["sizes"]),
                    "largest_real": max(real["sizes"]),
                }
            )

        real_groups = {
            (g["size"], g["backbone"], g["method"]): g for g in summaries.values() if g["regime"] == real_regime.name
        }
        for group in summaries.values():
            baseline = real_groups.get((group["size"], group["backbone"], group["method"]))
            if baseline is None or group["data"] == "real":
                continue
            kind = "synthetic vs real" if group["data"] == "synthetic" else "mixed vs real"
            comparisons.append(_compare(kind, group, baseline, rows_by_group, labels, run_dir, resamples))

    baseline_method = config.methods[0].name
    for group in summaries.values():
        if group["method"] == baseline_method:
            continue
        baseline = summaries.get(f"{group['regime']}/n={group['size']}/{group['backbone']}/{baseline_method}")
        if baseline is None:
            continue
        comparisons.append(_compare("method vs baseline", group, baseline, rows_by_group, labels, run_dir, resamples))

    # Each filtered / weighted / robust-loss regime against the same data without the treatment.
    for regime in config.regimes:
        plain = config.untreated_counterpart(regime)
        if plain is None:
            continue
        for group in summaries.values():
            if group["regime"] != regime.name:
                continue
            baseline = summaries.get(f"{plain.name}/n={group['size']}/{group['backbone']}/{group['method']}")
            if baseline is not None:
                comparisons.append(
                    _compare("treatment vs plain", group, baseline, rows_by_group, labels, run_dir, resamples)
                )

    generators, samples = {}, {}
    for name, directory in data.synthetic_dirs.items():
        generators[name], samples[name] = _generator_provenance(name, directory, data.classes)

    analysis = {
        "title": config.title,
        "classes": data.classes,
        "ood_sets": ood_names,
        "dataset_sizes": {
            "pool": len(data.pool),
            "val": len(data.val),
            "test": len(data.test),
            **{f"ood:{name}": len(d) for name, d in data.ood.items()},
        },
        "baseline_method": baseline_method,
        "groups": list(summaries.values()),
        "curves": curves,
        "exchange_rates": rates,
        "worth": worth,
        "comparisons": comparisons,
        "generators": generators,
        "samples": samples,
        "literature": LITERATURE,
    }
    analysis["headline"] = _headline(config, summaries, rates, worth, comparisons)
    # Strict JSON on disk (nan/inf as strings); the caller gets the numbers as numbers.
    _write_text(run_dir / ANALYSIS_FILE, json.dumps(to_json_value(analysis), indent=1, allow_nan=False))
    return from_json_value(to_json_value(analysis))


def _write_text(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.partial-{os.getpid()}")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


SUMMARY_COLUMNS = ("accuracy", "ece", "nll", "brier", "mean_mutual_information", "mean_expected_entropy")


def _csv_text(analysis: dict[str, Any]) -> str:
    groups = analysis["groups"]
    metrics = sorted({name for group in groups for name in group["metrics"]})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = [
        "regime",
        "data",
        "source",
        "size",
        "real_per_class",
        "synthetic_per_class",
        "backbone",
        "method",
        "treatment",
        "n_seeds",
    ]
    for name in metrics:
        header += [f"{name}_mean", f"{name}_ci_low", f"{name}_ci_high", f"{name}_std"]
    header += ["accuracy_test_bootstrap_low", "accuracy_test_bootstrap_high"]
    writer.writerow(header)
    for group in groups:
        line = [
            group[key]
            for key in (
                "regime",
                "data",
                "source",
                "size",
                "real_per_class",
                "synthetic_per_class",
                "backbone",
                "method",
            )
        ]
        line += [group.get("treatment") or "", len(group["seeds"])]
        for name in metrics:
            interval = group["metrics"].get(name, {})
            line += [interval.get(key, "") for key in ("mean", "low", "high", "std")]
        line += [group["test_bootstrap"]["accuracy"]["low"], group["test_bootstrap"]["accuracy"]["high"]]
        writer.writerow(line)
    return buffer.getvalue()


def summary_markdown(analysis: dict[str, Any]) -> str:
    """A short Markdown summary: the answer, the key facts and one table."""
    headline = analysis["headline"]
    ood = analysis["ood_sets"][0] if analysis["ood_sets"] else None
    lines = [
        f"# {headline['question']}",
        "",
        headline["answer"] or "(no real-vs-synthetic comparison in this study)",
        "",
    ]
    lines += [f"- {fact}" for fact in headline["facts"]]
    lines += [
        "",
        "| regime | per class | backbone | method | accuracy | ECE | NLL |" + (f" AUROC ({ood}) |" if ood else ""),
        "|---|---|---|---|---|---|---|" + ("---|" if ood else ""),
    ]
    for group in analysis["groups"]:
        m = group["metrics"]
        cells = [
            group["regime"],
            _per_class(group),
            group["backbone"],
            group["method"],
            interval_percent(m["accuracy"]),
            interval_percent(m["ece"]),
            f"{m['nll']['mean']:.3f}",
        ]
        if ood:
            auroc = m.get(f"{ood}:ood_auroc_entropy")
            cells.append(f"{auroc['mean']:.3f}" if auroc else "")
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _per_class(group: dict[str, Any]) -> str:
    if group["data"] == "mixed":
        text = f"{group['real_per_class']} real + {group['synthetic_per_class']} synthetic"
    else:
        text = f"{group['size']} {group['data']}"
    return f"{text} ({group['treatment']})" if group.get("treatment") else text


def write_summary_markdown(analysis: dict[str, Any], run_dir: str | os.PathLike[str]) -> str:
    """Write ``summary.md`` from the analysis; return the Markdown."""
    markdown = summary_markdown(analysis)
    _write_text(Path(run_dir) / SUMMARY_MD, markdown)
    return markdown


def write_summary_files(analysis: dict[str, Any], run_dir: str | os.PathLike[str]) -> str:
    """Write ``summary.csv`` and ``summary.md``; return the Markdown."""
    _write_text(Path(run_dir) / SUMMARY_CSV, _csv_text(analysis))
    return write_summary_markdown(analysis, run_dir)
