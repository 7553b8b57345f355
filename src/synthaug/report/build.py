"""Render ``RUN_DIR/report.html`` from a study's saved results, without retraining anything.

:func:`build_report` reads only files the study wrote — ``analysis.json``,
``config.resolved.yaml``, ``environment.json`` and the sample synthetic images that
``analysis.json`` points to — draws the figures, and renders one self-contained HTML file
(figures and thumbnails inline as base64 PNG, CSS inline, no script, no external link), so it
opens offline in any browser and can be mailed as one file.

All user text (class names, prompts, regime and method names, the config) goes through
jinja2 with autoescaping on, so a class called ``<script>…</script>`` is shown, not run.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import jinja2
from PIL import Image

from synthaug.errors import ConfigError
from synthaug.report import plots
from synthaug.study.results import from_json_value
from synthaug.study.text import interval_percent, interval_plain, interval_points, size_text

__all__ = ["build_report", "load_run", "report_context"]

REPORT_FILE = "report.html"
THUMBNAIL_PIXELS = 84


def load_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read what a study saved in ``run_dir``.

    Raises:
        ConfigError: ``run_dir`` holds no finished study (no ``analysis.json``).
    """
    run_dir = Path(run_dir)
    analysis_path = run_dir / "analysis.json"
    if not analysis_path.is_file():
        raise ConfigError(
            f"{run_dir}: no analysis.json here; run `synthaug study CONFIG --out {run_dir}` first "
            "(a study interrupted before its end writes it when rerun)"
        )
    try:
        analysis = from_json_value(json.loads(analysis_path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{analysis_path}: not valid JSON ({error}); rerun the study to rewrite it") from error
    environment_path = run_dir / "environment.json"
    config_path = run_dir / "config.resolved.yaml"
    return {
        "run_dir": run_dir,
        "analysis": analysis,
        "environment": json.loads(environment_path.read_text()) if environment_path.is_file() else {},
        "config_text": config_path.read_text(encoding="utf-8") if config_path.is_file() else "",
    }


def _training_data(group: dict[str, Any]) -> str:
    if group["data"] == "mixed":
        text = f"{group['real_per_class']} real + {group['synthetic_per_class']} {group['source']}"
    elif group["data"] == "synthetic":
        text = f"{group['size']} {group['source']}"
    else:
        text = f"{group['size']} real"
    # Filtered, audit-weighted and robust-loss regimes say what they changed.
    return f"{text} ({group['treatment']})" if group.get("treatment") else text


def _thumbnail(path: str) -> str | None:
    """A small inline PNG of an image file; ``None`` if the file is gone."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode)
            if max(image.size) < THUMBNAIL_PIXELS:
                # Tiny images (28x28) are enlarged with hard pixel edges so they stay legible.
                factor = max(1, THUMBNAIL_PIXELS // max(image.size))
                image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
            else:
                image.thumbnail((THUMBNAIL_PIXELS * 2, THUMBNAIL_PIXELS * 2))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=True)
    except OSError:
        return None
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(figure: Any) -> str | None:
    return None if figure is None else plots.figure_to_base64_png(figure)


def report_context(run: dict[str, Any]) -> dict[str, Any]:
    """Everything the template shows, as strings, numbers and base64 images."""
    analysis = run["analysis"]
    groups = analysis["groups"]
    by_id = {group["group_id"]: group for group in groups}
    headline = analysis["headline"]
    main = headline.get("main") or {}
    ood_sets = analysis["ood_sets"]
    primary_ood = ood_sets[0] if ood_sets else None
    baseline_method = analysis["baseline_method"]

    def group_at(
        regime: str | None, size: int | None, method: str, backbone: str | None = None
    ) -> dict[str, Any] | None:
        return by_id.get(f"{regime}/n={size}/{backbone or main.get('backbone')}/{method}")

    table = []
    for group in groups:
        metrics = group["metrics"]
        auroc = metrics.get(f"{primary_ood}:ood_auroc_entropy") if primary_ood else None
        table.append(
            {
                "regime": group["regime"],
                "data": group["data"],
                "training": _training_data(group),
                "backbone": group["backbone"],
                "method": group["method"],
                "seeds": len(group["seeds"]),
                "accuracy": interval_percent(metrics["accuracy"], unit=""),
                "accuracy_bootstrap": "[{:.1f}, {:.1f}]".format(
                    100 * group["test_bootstrap"]["accuracy"]["low"], 100 * group["test_bootstrap"]["accuracy"]["high"]
                ),
                "ece": interval_percent(metrics["ece"], unit=""),
                "nll": interval_plain(metrics["nll"]),
                "brier": interval_plain(metrics["brier"]),
                "auroc": interval_plain(auroc) if auroc else "–",
                "mutual_information": interval_plain(metrics.get("mean_mutual_information"), 4),
                "expected_entropy": interval_plain(metrics.get("mean_expected_entropy"), 3),
            }
        )

    # The original study's three experiments, rerun at the main size.
    original = []
    if main:
        experiments = [
            (
                "synthetic images → " + f"{main['backbone']} ({baseline_method})",
                main["synthetic_regime"],
                baseline_method,
                0,
            ),
            ("real images → same model", main["real_regime"], baseline_method, 1),
            (
                "synthetic images → BNN",
                main["synthetic_regime"],
                next((g["method"] for g in groups if g["method_key"] == "bnn"), None),
                2,
            ),
        ]
        for label, regime, method, index in experiments:
            group = group_at(regime, main["size"], method) if method else None
            original.append(
                {
                    "experiment": label,
                    "ours": interval_percent(group["metrics"]["accuracy"]) if group else "not run",
                    "ece": interval_percent(group["metrics"]["ece"]) if group else "",
                    "theirs": f"{100 * analysis['literature']['original_study'][index]['accuracy']:.2f} %",
                }
            )

    figures: dict[str, Any] = {"curves": []}
    curve_keys = list(dict.fromkeys((c["backbone"], c["method"]) for c in analysis["curves"] if c["data"] != "mixed"))
    for backbone, method in curve_keys:
        image = _figure(plots.learning_curves(analysis["curves"], analysis["exchange_rates"], backbone, method))
        if image:
            figures["curves"].append({"title": f"{backbone} / {method}", "image": image})

    regimes_at_main: list[tuple[str, str | None]] = []
    if main:
        regimes_at_main = [
            (f"trained on real ({main['size']}/class)", main["real_regime"]),
            (f"trained on {main['source']} ({main['size']}/class)", main["synthetic_regime"]),
        ]
    methods = list(dict.fromkeys(group["method"] for group in groups))
    reliability_rows = []
    for method in methods:
        columns = [(title, group_at(regime, main.get("size"), method)) for title, regime in regimes_at_main]
        columns = [(title, group) for title, group in columns if group is not None]
        if columns:
            reliability_rows.append((method, columns))
    if not reliability_rows:  # no real-vs-synthetic pair: show each method at its largest size
        for method in methods:
            largest = max((g for g in groups if g["method"] == method), key=lambda g: g["size"])
            reliability_rows.append((method, [(largest["regime"], largest)]))
    figures["reliability"] = _figure(plots.reliability_grid(reliability_rows))
    figures["scatter"] = _figure(plots.accuracy_vs_ece(groups))

    confusion_panels = [
        (f"{method}, {title}", group) for method, columns in reliability_rows[:1] for title, group in columns
    ]
    mixed = [g for g in groups if g["data"] == "mixed" and g["method"] == baseline_method]
    if mixed:
        largest_mixed = max(mixed, key=lambda g: (g["real_per_class"], g["synthetic_per_class"]))
        confusion_panels.append((f"{baseline_method}, trained on {_training_data(largest_mixed)}", largest_mixed))
    figures["confusion"] = _figure(plots.confusion_matrices(confusion_panels, analysis["classes"]))

    histogram_panels = [
        (f"{method}, {title}", group) for method, columns in reliability_rows for title, group in columns
    ]
    figures["entropy"] = _figure(plots.uncertainty_histograms(histogram_panels, "predictive_entropy"))
    # Mutual information is zero for a single weight sample; plot it only for sampling methods.
    sampling_panels = [(title, group) for title, group in histogram_panels if max(group["samples_per_seed"]) > 1]
    figures["information"] = (
        _figure(plots.uncertainty_histograms(sampling_panels, "mutual_information")) if sampling_panels else None
    )

    uncertainty = []
    for method, columns in reliability_rows:
        for title, group in columns:
            metrics = group["metrics"]
            uncertainty.append(
                {
                    "method": method,
                    "training": title,
                    "epistemic": interval_plain(metrics.get("mean_mutual_information"), 4),
                    "aleatoric": interval_plain(metrics.get("mean_expected_entropy"), 3),
                    "total": interval_plain(metrics.get("mean_predictive_entropy"), 3),
                    "auroc": {name: interval_plain(metrics.get(f"{name}:ood_auroc_entropy")) for name in ood_sets},
                    # One weight sample has no mutual information to rank by.
                    "auroc_mi": {
                        name: interval_plain(metrics.get(f"{name}:ood_auroc_mutual_information"))
                        if max(group["samples_per_seed"]) > 1
                        else "–"
                        for name in ood_sets
                    },
                }
            )

    rates = [
        {
            "regime": rate["synthetic_regime"],
            "source": rate["source"],
            "model": f"{rate['backbone']} / {rate['method']}",
            "real": rate["real_per_class"],
            "accuracy": f"{100 * rate['real_accuracy']:.1f} %",
            "synthetic": ("≤ " if rate["status"] == "at_or_below" else "") + size_text(rate["synthetic_per_class"]),
            "rate": "not reached"
            if rate["status"] == "not_reached"
            else ("≤ " if rate["status"] == "at_or_below" else "") + f"{rate['rate']:.1f}",
            "interval": "–"
            if rate["status"] == "not_reached"
            else f"{rate['rate_low']:.1f} – "
            + (size_text(rate["rate_high"]) if math.isinf(rate["rate_high"]) else f"{rate['rate_high']:.1f}"),
            "not_reached": f"{100 * rate['not_reached_fraction']:.0f} %",
        }
        for rate in analysis["exchange_rates"]
    ]

    comparisons = []
    for comparison in analysis["comparisons"]:
        differences = comparison["differences"]
        comparisons.append(
            {
                "kind": comparison["kind"],
                "treatment": comparison["treatment"],
                "baseline": comparison["baseline"],
                "accuracy": interval_points(differences["accuracy"]["seeds"]),
                "accuracy_bootstrap": interval_points(differences["accuracy"]["test_bootstrap"]),
                "ece": interval_points(differences["ece"]["seeds"]),
                "nll": f"{differences['nll']['seeds']['mean']:+.3f}",
            }
        )

    samples = []
    for source, items in analysis["samples"].items():
        by_class: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            image = _thumbnail(item["path"])
            if image is not None:
                by_class.setdefault(item["label"], []).append({"image": image, "prompt": item["prompt"] or ""})
        samples.append({"source": source, "classes": list(by_class.items())})

    environment = run["environment"]
    generators = []
    for name, generator in analysis["generators"].items():
        generators.append(
            {
                "name": name,
                "backend": generator.get("backend") or "unknown",
                "model": generator.get("model") or "default",
                "images": generator.get("images"),
                "cost": f"${generator.get('cost_usd', 0.0):.2f}",
                "params": json.dumps(generator.get("params") or {}, sort_keys=True),
                "prompt": generator.get("prompt_example") or "",
                "directory": generator.get("directory"),
            }
        )
    train_seconds = sum(group.get("train_seconds", 0.0) for group in groups)
    return {
        "title": analysis["title"],
        "answer": headline["answer"],
        "facts": headline["facts"],
        "main": main,
        "classes": analysis["classes"],
        "ood_sets": ood_sets,
        "primary_ood": primary_ood,
        "dataset_sizes": analysis["dataset_sizes"],
        "table": table,
        "several_backbones": len({group["backbone"] for group in groups}) > 1,
        "original": original,
        "figures": figures,
        "rates": rates,
        "literature": analysis["literature"],
        "comparisons": comparisons,
        "uncertainty": uncertainty,
        "samples": samples,
        "generators": generators,
        "environment": environment,
        "packages": sorted((environment.get("packages") or {}).items()),
        "seeds": environment.get("seeds") or sorted({seed for g in groups for seed in g["seeds"]}),
        "wall_seconds": environment.get("seconds"),
        "train_seconds": train_seconds,
        "config_text": run["config_text"],
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("synthaug.report", "templates"),
        autoescape=True,  # every value is escaped unless marked safe; nothing user-made is
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_report(run: dict[str, Any]) -> str:
    """The report HTML for a loaded run (see :func:`load_run`)."""
    return _environment().get_template("report.html.j2").render(**report_context(run))


def build_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``RUN_DIR/report.html`` from the saved results and return its path.

    Raises:
        ConfigError: ``run_dir`` holds no finished study.
    """
    run = load_run(run_dir)
    html = render_report(run)
    path = Path(run_dir) / REPORT_FILE
    staging = path.with_name(f".{REPORT_FILE}.partial-{os.getpid()}")
    staging.write_text(html, encoding="utf-8")
    os.replace(staging, path)
    return path
