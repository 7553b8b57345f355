"""The report's "What the generator made" and "Uncertainty-targeted generation" sections.

Both draw what the study saved and compute no statistic:

* :func:`generator_quality`: each synthetic source's inspection (``RUN_DIR/inspect/<source>/``,
  written by :func:`synthaug.study.inspection.inspect_sources`): precision, recall, density,
  coverage, FD and memorisation per class, and the nearest/farthest thumbnails;
* :func:`targeted_generation`: the targeted regimes' curves and comparisons, as the analysis
  computed them (:func:`synthaug.study.targeted.targeted_analysis`): accuracy against synthetic
  images spent, each rule against uniform at equal budget paired by seed, and the images each
  class got in each round.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from synthaug.fileio import png_base64
from synthaug.study.inspection import inspection_dirs
from synthaug.study.records import StudyAnalysis

__all__ = ["allocation_figure", "generator_quality", "targeted_figure", "targeted_generation"]


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def generator_quality(run_dir: str | Path) -> list[dict[str, Any]]:
    """One entry per inspected source: its feature space, a row per group (each measure beside its
    real-vs-real value), the findings, the thumbnail grid."""
    from synthaug.quality import read_summary
    from synthaug.quality.baseline import LABELS, MEASURES, format_value

    sources = []
    for name, folder in inspection_dirs(run_dir).items():
        summary = read_summary(folder)
        rows = []
        for group in [summary.overall, *summary.classes]:
            cells = []
            for key in MEASURES:
                measure = group.measures.get(key)
                cells.append({"generated": "–", "real": "", "gap": False} if measure is None else {
                    "generated": format_value(key, measure.generated.mean),
                    "real": format_value(key, measure.real.mean),
                    "gap": measure.beyond_real,
                })
            rows.append({
                "name": "all classes" if group is summary.overall else group.name,
                "generated": group.generated,
                "sample_size": group.sample_size,
                "cells": cells,
                "memorised": "–" if group.generated == 0 else f"{100 * group.memorisation.share:.1f} %",
                "near_copies": group.memorisation.near_copies,
            })
        grid = folder / "thumbnails.png"
        sources.append({
            "source": name,
            "features": summary.feature_description,
            "nearest_k": summary.nearest_k,
            "draws": summary.draws,
            "chance": f"{100 * summary.overall.memorisation.real_quantile:.0f} %",
            "columns": [LABELS[key] for key in MEASURES],
            "rows": rows,
            "findings": [("all classes" if group is summary.overall else group.name, "; ".join(group.findings))
                         for group in [summary.overall, *summary.classes] if group.findings],
            "grid": png_base64(grid.read_bytes()) if grid.is_file() else None,
            "classes": [group.name for group in summary.classes if group.nearest],
            "page": str(folder / "inspect.html"),
        })
    return sources


def targeted_figure(curves: list[Any], comparisons: list[Any]) -> Any:
    """Left: test accuracy (mean and 95 % interval over seeds) against synthetic images spent, one
    line per rule. Right: each rule minus uniform at every point, paired by seed (the seeds'
    shared real subsample cancels out, so these intervals are much narrower)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11.0, 4.0))
    ax, paired = figure.subplots(1, 2)
    images = {(curve.regime, curve.size): curve.images for curve in curves}
    for comparison in comparisons:
        x = images[(comparison.regime, comparison.size)]
        means = [100 * interval.mean for interval in comparison.by_images]
        errors = [[100 * (i.mean - i.low) if not math.isnan(i.low) else 0 for i in comparison.by_images],
                  [100 * (i.high - i.mean) if not math.isnan(i.high) else 0 for i in comparison.by_images]]
        paired.errorbar(x, means, yerr=errors, marker="o", capsize=3,
                        label=f"{comparison.regime} − {comparison.baseline} (n={comparison.size})")
    paired.axhline(0.0, color="grey", linewidth=1)
    paired.set_xlabel("synthetic images generated")
    paired.set_ylabel("test accuracy difference (points)")
    paired.grid(alpha=0.3)
    if comparisons:
        paired.legend(fontsize="small")
    for curve in curves:
        means = [100 * interval.mean for interval in curve.accuracy]
        ax.plot(curve.images, means, marker="o", label=f"{curve.regime} (n={curve.size})")
        lows = [100 * interval.low for interval in curve.accuracy]
        highs = [100 * interval.high for interval in curve.accuracy]
        if not any(math.isnan(value) for value in lows):
            ax.fill_between(curve.images, lows, highs, alpha=0.15)
    ax.set_xlabel("synthetic images generated")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    figure.tight_layout()
    return figure


def allocation_figure(curves: list[Any]) -> Any:
    """Images each class got in each round (mean over seeds), one panel per targeted regime."""
    import numpy as np
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3.2 * len(curves) + 1.6, 3.6))
    axes = np.atleast_1d(figure.subplots(1, len(curves), sharey=True, squeeze=False)[0])
    for ax, curve in zip(axes, curves):
        labels = list(curve.allocation)
        rounds = len(next(iter(curve.allocation.values()))) if labels else 0
        bottom = np.zeros(len(labels))
        for index in range(rounds):
            values = np.array([curve.allocation[label][index] for label in labels])
            ax.bar(range(len(labels)), values, bottom=bottom, label=f"after round {index}")
            bottom += values
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize="small")
        ax.set_title(curve.regime, fontsize="medium")
    axes[0].set_ylabel("images generated per class")
    axes[-1].legend(fontsize="x-small")
    figure.tight_layout()
    return figure


def targeted_generation(analysis: StudyAnalysis) -> dict[str, Any] | None:
    """Figures and the comparison table of the targeted regimes (the analysis's
    ``targeted_curves`` and ``targeted_comparisons``); ``None`` when the study has none."""
    from synthaug.report.plots import figure_to_base64_png

    curves, comparisons = analysis.targeted_curves, analysis.targeted_comparisons
    if not curves:
        return None
    rows = []
    for comparison in comparisons:
        difference = comparison.final_difference
        share = comparison.share_of_budget
        rows.append({
            "regime": comparison.regime,
            "baseline": comparison.baseline,
            "size": comparison.size,
            "budget": comparison.budget,
            "difference": f"{100 * difference.mean:+.2f} ({_number(100 * difference.low, 2)} .. "
                          f"{_number(100 * difference.high, 2)}), {difference.n} seeds",
            "uniform_final": f"{100 * comparison.uniform_final:.2f} %",
            "to_match": "not reached" if share is None else f"{comparison.images_to_match:.0f} ({100 * share:.0f} %)",
        })
    return {
        "accuracy": figure_to_base64_png(targeted_figure(curves, comparisons)),
        "allocation": figure_to_base64_png(allocation_figure(curves)),
        "comparisons": rows,
    }
