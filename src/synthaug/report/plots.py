"""The report's figures, drawn from ``analysis.json`` data only.

Each function takes the study's records (:mod:`synthaug.study.records`, as read back from
``analysis.json``) and returns a :class:`matplotlib.figure.Figure` built without pyplot, so nothing depends on a
GUI backend or global state. Reliability diagrams reuse
:class:`synthaug.metrics.ReliabilityDisplay`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from synthaug.fileio import png_base64
from synthaug.metrics import ReliabilityDiagram, ReliabilityDisplay
from synthaug.study.records import ExchangeRateRow, GroupSummary, LearningCurve, ReliabilityBins
from synthaug.study.stats import Interval

__all__ = [
    "accuracy_vs_ece",
    "confusion_matrices",
    "figure_to_base64_png",
    "learning_curves",
    "reliability_grid",
    "uncertainty_histograms",
]

# One colour per kind of training data, used by every figure.
DATA_COLOURS = {"real": "tab:blue", "synthetic": "tab:orange", "mixed": "tab:green"}
MARKERS = "osD^vP*Xh<>"


def figure_to_base64_png(figure: Figure, dpi: int = 110) -> str:
    """The figure as a base64-encoded PNG (for an inline ``data:`` URI)."""
    return png_base64(figure, dpi=dpi)


def _errorbar(ax: Any, x: Sequence[float], intervals: Sequence[Interval], scale: float = 100.0, **style: Any) -> None:
    means = np.array([i.mean for i in intervals]) * scale
    lows = np.array([i.low for i in intervals], dtype=float) * scale
    highs = np.array([i.high for i in intervals], dtype=float) * scale
    error = np.vstack([np.nan_to_num(means - lows), np.nan_to_num(highs - means)])
    ax.errorbar(x, means, yerr=error, capsize=3, **style)


def learning_curves(
    curves: Sequence[LearningCurve], rates: Sequence[ExchangeRateRow], backbone: str, method: str
) -> Figure | None:
    """Accuracy and ECE against images per class (log scale) for one backbone and method,
    one line per regime, with the exchange rate drawn as arrows from ``n`` real to ``m``
    synthetic images per class."""
    chosen = [c for c in curves if c.backbone == backbone and c.method == method]
    if not chosen:
        return None
    figure = Figure(figsize=(10.0, 4.0), layout="constrained")
    accuracy_ax, ece_ax = figure.subplots(1, 2)
    for curve in chosen:
        colour = DATA_COLOURS[curve.data]
        label = curve.regime + (" (real per class + synthetic)" if curve.data == "mixed" else "")
        style = {"color": colour, "marker": "o", "label": label, "linestyle": "--" if curve.data == "mixed" else "-"}
        _errorbar(accuracy_ax, curve.sizes, curve.accuracy, **style)
        _errorbar(ece_ax, curve.sizes, curve.ece, **style)
    for row in rates:
        if row.backbone != backbone or row.method != method:
            continue
        rate = row.estimate
        n, target = rate.real_per_class, 100 * rate.real_accuracy
        m = rate.synthetic_per_class
        if math.isinf(m):
            accuracy_ax.annotate(
                "not reached", xy=(n, target), xytext=(6, 6), textcoords="offset points", fontsize=8, color="tab:red"
            )
            continue
        accuracy_ax.annotate(
            "",
            xy=(m, target),
            xytext=(n, target),
            arrowprops={"arrowstyle": "->", "color": "0.3", "linestyle": ":", "linewidth": 1.2},
        )
        accuracy_ax.annotate(
            f"×{rate.rate:.1f}", xy=(m, target), xytext=(4, -12), textcoords="offset points", fontsize=8, color="0.2"
        )
    sizes = sorted({size for curve in chosen for size in curve.sizes})
    for ax, what in ((accuracy_ax, "accuracy on the real test set (%)"), (ece_ax, "ECE (%)")):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(size) for size in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training images per class (log scale)")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    # t-intervals over few seeds can be wider than the scale; keep the axes on possible values.
    accuracy_ax.set_ylim(max(0.0, accuracy_ax.get_ylim()[0]), min(100.0, accuracy_ax.get_ylim()[1]))
    ece_ax.set_ylim(max(0.0, ece_ax.get_ylim()[0]), min(100.0, ece_ax.get_ylim()[1]))
    accuracy_ax.set_title(f"{backbone} / {method}: learning curves")
    ece_ax.set_title("calibration error (lower is better)")
    accuracy_ax.legend(fontsize="small", loc="lower right")
    return figure


def _diagram(bins: ReliabilityBins) -> ReliabilityDiagram:
    return ReliabilityDiagram(
        bin_edges=np.asarray(bins.bin_edges, dtype=float),
        bin_confidence=np.asarray(bins.bin_confidence, dtype=float),
        bin_accuracy=np.asarray(bins.bin_accuracy, dtype=float),
        bin_count=np.asarray(bins.bin_count, dtype=np.int64),
        expected_calibration_error=bins.expected_calibration_error,
        maximum_calibration_error=bins.maximum_calibration_error,
        strategy=bins.strategy,
    )


def reliability_grid(rows: Sequence[tuple[str, Sequence[tuple[str, GroupSummary]]]]) -> Figure:
    """Reliability diagrams, one row per method and one column per training regime.

    Args:
        rows: ``[(method, [(column title, group), ...]), ...]``.
    """
    n_columns = max(len(columns) for _, columns in rows)
    figure = Figure(figsize=(4.2 * n_columns, 3.9 * len(rows)), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(rows), n_columns, squeeze=False))
    for row_index, (method, columns) in enumerate(rows):
        for column_index in range(n_columns):
            ax = axes[row_index, column_index]
            if column_index >= len(columns):
                ax.set_visible(False)
                continue
            title, group = columns[column_index]
            diagram = _diagram(group.reliability)
            display = ReliabilityDisplay(diagram).plot(ax=ax)
            # Two short lines instead of the display's one long title, which panels side by side clip.
            display.ax_.set_title(
                f"{method}, {title}\nECE = {100 * diagram.expected_calibration_error:.1f} %", fontsize=9
            )
            legend = display.ax_.get_legend()
            if legend is not None and (row_index, column_index) != (0, 0):
                legend.remove()
    return figure


def accuracy_vs_ece(groups: Sequence[GroupSummary]) -> Figure:
    """Every group as a point (mean accuracy, mean ECE over seeds); colour = data, marker = method."""
    figure = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = figure.add_subplot()
    methods = list(dict.fromkeys(group.key.method for group in groups))
    # Means only: with a handful of seeds the intervals would cover the plot (they are in the table).
    for group in groups:
        ax.plot(
            100 * group.metrics["accuracy"].mean,
            100 * group.metrics["ece"].mean,
            color=DATA_COLOURS[group.key.data],
            marker=MARKERS[methods.index(group.key.method) % len(MARKERS)],
            markersize=8,
            alpha=0.85,
            linestyle="none",
        )
    for data, colour in DATA_COLOURS.items():
        if any(group.key.data == data for group in groups):
            ax.plot([], [], color=colour, marker="s", linestyle="none", label=f"trained on {data}")
    for index, method in enumerate(methods):
        ax.plot([], [], color="0.3", marker=MARKERS[index % len(MARKERS)], linestyle="none", label=method)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("accuracy on the real test set (%)  →  better")
    ax.set_ylabel("ECE (%)  ↓  better")
    ax.set_title("accuracy against calibration, every regime, size and method")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", ncols=2)
    return figure


def confusion_matrices(panels: Sequence[tuple[str, GroupSummary]], classes: Sequence[str]) -> Figure:
    """Row-normalised confusion matrices (recall per true class), side by side."""
    n_classes = len(classes)
    side = max(3.8, 0.42 * n_classes + 1.5)
    figure = Figure(figsize=(side * len(panels), side), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(panels), squeeze=False)[0])
    # Long or hostile class names are cut so that a label never swamps the figure.
    tick_labels = [name if len(name) <= 18 else name[:17] + "…" for name in classes]
    for ax, (title, group) in zip(axes, panels):
        counts = np.asarray(group.confusion, dtype=float)
        rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
        image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(n_classes), tick_labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(n_classes), tick_labels, fontsize=8)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title, fontsize=9)
        if n_classes <= 12:
            for i in range(n_classes):
                for j in range(n_classes):
                    ax.text(
                        j,
                        i,
                        f"{100 * rates[i, j]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if rates[i, j] > 0.6 else "black",
                    )
    figure.colorbar(image, ax=list(axes), shrink=0.8, label="fraction of the true class")
    return figure


def uncertainty_histograms(panels: Sequence[tuple[str, GroupSummary]], score: str) -> Figure:
    """Histograms of a per-example uncertainty score on the real test set and each OOD set.

    Args:
        panels: ``[(title, group), ...]``.
        score: ``"predictive_entropy"``, ``"mutual_information"`` or ``"expected_entropy"``.
    """
    n_columns = min(len(panels), 4)
    n_rows = math.ceil(len(panels) / n_columns)
    figure = Figure(figsize=(3.6 * n_columns, 2.8 * n_rows), layout="constrained")
    axes = figure.subplots(n_rows, n_columns, squeeze=False).ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax, (title, group) in zip(axes, panels):
        histogram = group.histograms[score]
        edges = np.asarray(histogram.edges)
        for index, (name, counts) in enumerate(histogram.counts.items()):
            counts = np.asarray(counts, dtype=float)
            density = counts / max(counts.sum(), 1.0)
            label = "real test set" if name == "test" else f"OOD: {name}"
            ax.stairs(density, edges, fill=index == 0, alpha=0.45 if index == 0 else 1.0, label=label, linewidth=1.4)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(score.replace("_", " ") + " (nats)", fontsize=8)
        ax.set_ylabel("fraction", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize="x-small")
    return figure
