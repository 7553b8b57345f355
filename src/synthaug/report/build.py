"""Render ``RUN_DIR/report.html`` from a study's saved results, without retraining anything.

:func:`build_report` reads only files the study wrote — ``analysis.json``,
``config.resolved.yaml``, ``environment.json`` and the sample synthetic images that
``analysis.json`` points to — draws the figures, and renders one self-contained HTML file
(figures and thumbnails inline as base64 PNG, CSS inline, no script, no external link), so it
opens offline in any browser and can be mailed as one file.

The study's records (:class:`~synthaug.study.records.StudyAnalysis`, read back by
:func:`load_run`) become the template's strings in one function per report section
(:func:`results_table`, :func:`original_study`, :func:`curve_figures`, ...);
:func:`report_context` only gathers them.

All user text (class names, prompts, regime and method names, the config) goes through
jinja2 with autoescaping on, so a class called ``<script>…</script>`` is shown, not run.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from synthaug import pages
from synthaug.fileio import atomic_write_text
from synthaug.report import generated, guided, plots, shift
from synthaug.study.analysis import read_analysis
from synthaug.study.literature import ORIGINAL_STUDY, literature_dict
from synthaug.study.records import GroupSummary, StudyAnalysis
from synthaug.study.run_folder import RunFolder
from synthaug.study.text import interval_percent, interval_plain, interval_points, size_text, training_data_text

__all__ = ["SavedRun", "build_report", "load_run", "render_report", "report_context"]

#: The groups shown side by side in the calibration, confusion and uncertainty sections:
#: ``[(method, [(column title, group), ...]), ...]``.
Panels = list[tuple[str, list[tuple[str, GroupSummary]]]]


@dataclass(frozen=True)
class SavedRun:
    """What a study saved in its run folder, as the report reads it.

    Attributes:
        run_dir: The run folder.
        analysis: ``analysis.json``.
        environment: ``environment.json`` (package versions, device, seeds, wall time).
        config_text: ``config.resolved.yaml`` as written.
    """

    run_dir: Path
    analysis: StudyAnalysis
    environment: dict[str, Any]
    config_text: str


def load_run(run_dir: str | os.PathLike[str]) -> SavedRun:
    """Read what a study saved in ``run_dir``.

    Raises:
        ConfigError: ``run_dir`` holds no finished study (no ``analysis.json``).
    """
    folder = RunFolder(run_dir)
    return SavedRun(
        run_dir=folder.root,
        analysis=read_analysis(folder.root),
        environment=folder.read_environment(),
        config_text=folder.config_text(),
    )


def _training_data(group: GroupSummary) -> str:
    return training_data_text(group.key, group.key.source or "synthetic")


def _thumbnail(path: str) -> str | None:
    """A small inline PNG of an image file; ``None`` if the file is gone."""
    try:
        with Image.open(path) as image:
            return guided.thumbnail_png(image)
    except OSError:
        return None


def _figure(figure: Any) -> str | None:
    return None if figure is None else plots.figure_to_base64_png(figure)


def _primary_ood(analysis: StudyAnalysis) -> str | None:
    return analysis.ood_sets[0] if analysis.ood_sets else None


def results_table(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    """The results table: one row per group, every headline metric with its interval."""
    primary_ood = _primary_ood(analysis)
    table = []
    for group in analysis.groups:
        metrics, bootstrap = group.metrics, group.test_bootstrap["accuracy"]
        auroc = metrics.get(f"{primary_ood}:ood_auroc_entropy") if primary_ood else None
        table.append(
            {
                "regime": group.key.regime,
                "data": group.key.data,
                "training": _training_data(group),
                "backbone": group.key.backbone,
                "method": group.key.method,
                "seeds": len(group.seeds),
                "augment": group.key.augment,
                "under_trained": group.under_trained,
                "accuracy": interval_percent(metrics["accuracy"], unit=""),
                "accuracy_bootstrap": f"[{100 * bootstrap.low:.1f}, {100 * bootstrap.high:.1f}]",
                "ece": interval_percent(metrics["ece"], unit=""),
                "nll": interval_plain(metrics["nll"]),
                "brier": interval_plain(metrics["brier"]),
                "auroc": interval_plain(auroc) if auroc else "–",
                "mutual_information": interval_plain(metrics.get("mean_mutual_information"), 4),
                "expected_entropy": interval_plain(metrics.get("mean_expected_entropy"), 3),
            }
        )
    return table


def original_study(analysis: StudyAnalysis) -> list[dict[str, str]]:
    """The original study's experiments, each beside our rerun of it at the main size."""
    main = analysis.headline.main
    if main is None:
        return []
    rows = []
    for reference in ORIGINAL_STUDY:
        regime = main.real_regime if reference.data == "real" else main.synthetic_regime
        if reference.method_key is None:
            method: str | None = analysis.baseline_method
        else:
            method = next((g.key.method for g in analysis.groups if g.key.method_key == reference.method_key), None)
        group = analysis.group(main.group_id(regime, method)) if method else None
        rows.append(
            {
                "experiment": reference.ours.format(backbone=main.backbone, method=analysis.baseline_method),
                "ours": interval_percent(group.metrics["accuracy"]) if group else "not run",
                "ece": interval_percent(group.metrics["ece"]) if group else "",
                "theirs": f"{100 * reference.accuracy:.2f} %",
            }
        )
    return rows


def curve_figures(analysis: StudyAnalysis) -> list[dict[str, str]]:
    """One learning-curve figure per backbone and method (mixed regimes are in the table)."""
    figures = []
    models = dict.fromkeys((c.backbone, c.method) for c in analysis.curves if c.data != "mixed")
    for backbone, method in models:
        image = _figure(plots.learning_curves(analysis.curves, analysis.exchange_rates, backbone, method))
        if image:
            figures.append({"title": f"{backbone} / {method}", "image": image})
    return figures


def comparison_panels(analysis: StudyAnalysis) -> Panels:
    """Each method trained on real and on synthetic data at the main size; without a
    real-vs-synthetic pair, each method at its largest size."""
    main = analysis.headline.main
    methods = list(dict.fromkeys(group.key.method for group in analysis.groups))
    panels: Panels = []
    if main is not None:
        titles = [
            (f"trained on real ({main.size}/class)", main.real_regime),
            (f"trained on {main.source} ({main.size}/class)", main.synthetic_regime),
        ]
        for method in methods:
            columns = [(title, analysis.group(main.group_id(regime, method))) for title, regime in titles]
            present = [(title, group) for title, group in columns if group is not None]
            if present:
                panels.append((method, present))
    if not panels:
        for method in methods:
            largest = max((g for g in analysis.groups if g.key.method == method), key=lambda g: g.key.size)
            panels.append((method, [(largest.key.regime, largest)]))
    return panels


def confusion_figure(analysis: StudyAnalysis, panels: Panels) -> str | None:
    """Confusion matrices of the baseline at the main size, and of the largest mixed set."""
    shown = [(f"{method}, {title}", group) for method, columns in panels[:1] for title, group in columns]
    baseline = analysis.baseline_method
    mixed = [g for g in analysis.groups if g.key.data == "mixed" and g.key.method == baseline]
    if mixed:
        largest = max(mixed, key=lambda g: (g.key.real_per_class, g.key.synthetic_per_class))
        shown.append((f"{baseline}, trained on {_training_data(largest)}", largest))
    return _figure(plots.confusion_matrices(shown, analysis.classes))


def uncertainty_figures(panels: Panels) -> dict[str, str | None]:
    """Histograms of predictive entropy, and of mutual information for sampling methods."""
    shown = [(f"{method}, {title}", group) for method, columns in panels for title, group in columns]
    # Mutual information is zero for a single weight sample; plot it only for sampling methods.
    sampling = [(title, group) for title, group in shown if group.has_weight_samples]
    return {
        "entropy": _figure(plots.uncertainty_histograms(shown, "predictive_entropy")),
        "information": _figure(plots.uncertainty_histograms(sampling, "mutual_information")) if sampling else None,
    }


def uncertainty_table(analysis: StudyAnalysis, panels: Panels) -> list[dict[str, Any]]:
    """Epistemic, aleatoric and total uncertainty, and OOD detection, of the panels' groups."""
    rows = []
    for method, columns in panels:
        for title, group in columns:
            metrics = group.metrics
            rows.append(
                {
                    "method": method,
                    "training": title,
                    "epistemic": interval_plain(metrics.get("mean_mutual_information"), 4),
                    "aleatoric": interval_plain(metrics.get("mean_expected_entropy"), 3),
                    "total": interval_plain(metrics.get("mean_predictive_entropy"), 3),
                    "auroc": {
                        name: interval_plain(metrics.get(f"{name}:ood_auroc_entropy")) for name in analysis.ood_sets
                    },
                    # One weight sample has no mutual information to rank by.
                    "auroc_mi": {
                        name: interval_plain(metrics.get(f"{name}:ood_auroc_mutual_information"))
                        if group.has_weight_samples
                        else "–"
                        for name in analysis.ood_sets
                    },
                    # Does the epistemic score separate OOD data at all (report/shift.py)?
                    "epistemic_verdict": shift.epistemic_verdicts(analysis, group),
                }
            )
    return rows


def exchange_rate_table(analysis: StudyAnalysis) -> list[dict[str, str]]:
    """The exchange rates, one row per synthetic curve and real size."""
    rows = []
    for row in analysis.exchange_rates:
        rate = row.estimate
        bound = "≤ " if rate.status == "at_or_below" else ""
        high = size_text(rate.rate_high) if math.isinf(rate.rate_high) else f"{rate.rate_high:.1f}"
        reached = rate.status != "not_reached"
        rows.append(
            {
                "regime": row.synthetic_regime + ("" if row.real_regime is None else f" vs {row.real_regime}"),
                "source": row.source,
                "images": row.source_kind,
                "model": f"{row.backbone} / {row.method}",
                "real": rate.real_per_class,
                "accuracy": f"{100 * rate.real_accuracy:.1f} %",
                "synthetic": bound + size_text(rate.synthetic_per_class),
                "rate": bound + f"{rate.rate:.1f}" if reached else "not reached",
                "interval": f"{rate.rate_low:.1f} – {high}" if reached else "–",
                "not_reached": f"{100 * rate.not_reached_fraction:.0f} %",
            }
        )
    return rows


def augmentation_table(analysis: StudyAnalysis) -> list[dict[str, str]]:
    """Generated vs classical augmentation: X, Y and Z at each real size (see
    :class:`~synthaug.study.records.AugmentationComparison`), accuracy and ECE in points."""
    questions = (
        ("over_none", "real + generated vs real (neither augmented)"),
        ("over_best", "real + generated vs real + best policy"),
        ("on_top_of_best", "real + generated + best policy vs real + best policy"),
    )
    rows = []
    for record in analysis.augmentation:
        policies = ", ".join(f"{name} {100 * accuracy:.1f} %" for name, accuracy in sorted(record.policies.items()))
        for field, question in questions:
            comparison = getattr(record, field)
            differences = comparison.differences if comparison is not None else None
            rows.append(
                {
                    "real": str(record.real_per_class),
                    "generated": f"{record.synthetic_per_class} {record.source}",
                    "model": f"{record.backbone} / {record.method}",
                    "best": f"{record.best_policy} (of {policies})",
                    "question": question,
                    "accuracy": interval_points(differences["accuracy"].seeds) if differences else "not run",
                    "ece": interval_points(differences["ece"].seeds) if differences else "not run",
                }
            )
    return rows


def comparison_table(analysis: StudyAnalysis) -> list[dict[str, str]]:
    """The paired comparisons, differences in percentage points."""
    rows = []
    for comparison in analysis.comparisons:
        differences = comparison.differences
        rows.append(
            {
                "kind": comparison.kind,
                "treatment": comparison.treatment,
                "baseline": comparison.baseline,
                "accuracy": interval_points(differences["accuracy"].seeds),
                "accuracy_bootstrap": interval_points(differences["accuracy"].test_bootstrap),
                "ece": interval_points(differences["ece"].seeds),
                "nll": f"{differences['nll'].seeds.mean:+.3f}",
            }
        )
    return rows


def sample_grids(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    """Thumbnails of each synthetic source's sample images, by class, with their prompts."""
    grids = []
    for source, items in analysis.samples.items():
        by_class: dict[str, list[dict[str, str]]] = {}
        for item in items:
            image = _thumbnail(item.path)
            if image is not None:
                by_class.setdefault(item.label, []).append({"image": image, "prompt": item.prompt or ""})
        grids.append({"source": source, "classes": list(by_class.items())})
    return grids


def generator_table(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    """What made each synthetic source."""
    return [
        {
            "name": name,
            "backend": generator.backend or "unknown",
            "model": generator.model or "default",
            "images": generator.images,
            "cost": f"${generator.cost_usd:.2f}",
            "params": json.dumps(generator.params or {}, sort_keys=True),
            "prompt": generator.prompt_example or "",
            "directory": generator.directory,
        }
        for name, generator in analysis.generators.items()
    ]


def provenance(run: SavedRun) -> dict[str, Any]:
    """Packages, seeds, timing and the resolved config."""
    groups: Sequence[GroupSummary] = run.analysis.groups
    environment = run.environment
    return {
        "environment": environment,
        "packages": sorted((environment.get("packages") or {}).items()),
        "seeds": environment.get("seeds") or sorted({seed for g in groups for seed in g.seeds}),
        "wall_seconds": environment.get("seconds"),
        "train_seconds": sum(group.train_seconds for group in groups),
        "config_text": run.config_text,
    }


def report_context(run: SavedRun) -> dict[str, Any]:
    """Everything the template shows, as strings, numbers and base64 images: one call per
    section of the report."""
    analysis = run.analysis
    headline = analysis.headline
    panels = comparison_panels(analysis)
    figures = {
        "curves": curve_figures(analysis),
        "reliability": _figure(plots.reliability_grid(panels)),
        "scatter": _figure(plots.accuracy_vs_ece(analysis.groups)),
        "confusion": confusion_figure(analysis, panels),
        **uncertainty_figures(panels),
    }
    return {
        "title": analysis.title,
        "answer": headline.answer,
        "facts": headline.facts,
        "main": headline.main or {},
        "classes": analysis.classes,
        "ood_sets": analysis.ood_sets,
        "primary_ood": _primary_ood(analysis),
        "dataset_sizes": analysis.dataset_sizes,
        "table": results_table(analysis),
        "several_backbones": len({group.key.backbone for group in analysis.groups}) > 1,
        "original": original_study(analysis),
        "figures": figures,
        "rates": exchange_rate_table(analysis),
        "literature": literature_dict(),
        "comparisons": comparison_table(analysis),
        "augmentation": augmentation_table(analysis),
        "under_trained": sum(group.under_trained for group in analysis.groups),
        "uncertainty": uncertainty_table(analysis, panels),
        # Accuracy, ECE and NLL under corruption (report/shift.py); None without `shift`.
        "shift": _shift_section(analysis, panels),
        "samples": sample_grids(analysis),
        # Guided images beside the real image each came from (report/guided.py).
        "guided_samples": guided.guided_samples(analysis),
        "generators": generator_table(analysis),
        # "What the generator made" and the targeted regimes (report/generated.py).
        "generated_quality": generated.generator_quality(run.run_dir),
        "targeted": generated.targeted_generation(analysis),
        **provenance(run),
    }


def _shift_section(analysis: StudyAnalysis, panels: Panels) -> dict[str, Any] | None:
    section = shift.shift_section(analysis, panels)
    return None if section is None else {**section, "figure": _figure(section["figure"])}


def render_report(run: SavedRun) -> str:
    """The report HTML for a loaded run (see :func:`load_run`)."""
    return pages.environment("synthaug.report").get_template("report.html.j2").render(**report_context(run))


def build_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``RUN_DIR/report.html`` from the saved results and return its path.

    Raises:
        ConfigError: ``run_dir`` holds no finished study.
    """
    path = RunFolder(run_dir).report
    atomic_write_text(path, render_report(load_run(run_dir)))
    return path
