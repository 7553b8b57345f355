"""Reliability diagram plot, following scikit-learn's Display convention.

A display holds computed data; :meth:`ReliabilityDisplay.plot` only draws, on the axes it is
given or on a new figure. Figures are built with :class:`matplotlib.figure.Figure`, not
pyplot, so plotting never opens a window or needs a GUI backend, and PNGs are written with
Agg (``display.figure_.savefig("reliability.png")``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from synthaug.metrics.calibration import ReliabilityDiagram, reliability_diagram


class ReliabilityDisplay:
    """Reliability diagram: per-bin accuracy bars, the gap to the mean confidence, and a
    histogram of how many examples fall in each confidence bin.

    Create it with :meth:`from_predictions` (computes and plots) or from an existing
    :class:`~synthaug.metrics.calibration.ReliabilityDiagram` and call :meth:`plot`.

    Args:
        diagram: The per-bin statistics to draw.
        name: Optional model name, shown in the title.

    Attributes:
        ax_: The reliability axes (after :meth:`plot`).
        histogram_ax_: The twin axes holding the confidence histogram.
        figure_: The figure holding ``ax_``.

    References:
        Guo et al., "On Calibration of Modern Neural Networks", ICML 2017 (figure 1).
    """

    def __init__(self, diagram: ReliabilityDiagram, *, name: str | None = None) -> None:
        self.diagram = diagram
        self.name = name

    @classmethod
    def from_predictions(
        cls,
        probs: Any,
        labels: Any,
        *,
        n_bins: int = 15,
        strategy: str = "uniform",
        name: str | None = None,
        ax: Axes | None = None,
    ) -> ReliabilityDisplay:
        """Compute the reliability diagram of predictions and plot it.

        Args:
            probs: Probabilities ``(S, N, C)`` or ``(N, C)``, numpy array or torch tensor.
            labels: Integer class indices ``(N,)``.
            n_bins: Number of confidence bins.
            strategy: ``"uniform"`` or ``"quantile"`` (see
                :func:`~synthaug.metrics.calibration.expected_calibration_error`).
            name: Optional model name, shown in the title.
            ax: Axes to draw on; a new figure when None.

        Returns:
            The display, already plotted.
        """
        return cls(reliability_diagram(probs, labels, n_bins=n_bins, strategy=strategy), name=name).plot(ax=ax)

    def plot(self, ax: Axes | None = None) -> ReliabilityDisplay:
        """Draw the diagram on ``ax`` (a new 5 x 5 inch figure when None) and return self."""
        if ax is None:
            ax = Figure(figsize=(5.0, 5.0), layout="constrained").add_subplot()
        diagram = self.diagram
        left_edges = diagram.bin_edges[:-1]
        widths = np.diff(diagram.bin_edges)
        occupied = diagram.bin_count > 0

        # The histogram is an outline on a twin axis, scaled to the lower third, so that it
        # stays visible over the reliability bars without hiding them.
        histogram_ax = ax.twinx()
        fractions = diagram.bin_count / max(int(diagram.bin_count.sum()), 1)
        histogram_ax.stairs(fractions, diagram.bin_edges, color="0.15", linewidth=1.5, label="examples (right axis)")
        histogram_ax.set_ylim(0.0, 3.0 * max(float(fractions.max()), 1e-12))
        histogram_ax.set_ylabel("fraction of examples")

        accuracy = diagram.bin_accuracy[occupied]
        confidence = diagram.bin_confidence[occupied]
        ax.bar(
            left_edges[occupied], accuracy, width=widths[occupied], align="edge",
            color="tab:blue", edgecolor="black", linewidth=0.5, label="accuracy",
        )
        ax.bar(
            left_edges[occupied], confidence - accuracy, bottom=accuracy, width=widths[occupied], align="edge",
            color="tab:red", alpha=0.3, edgecolor="tab:red", hatch="//", linewidth=0.5, label="gap to confidence",
        )
        ax.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="black", linewidth=1.0, label="perfect calibration")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("confidence (top-label probability)")
        ax.set_ylabel("accuracy")
        title = f"ECE = {diagram.expected_calibration_error:.4f} ({len(widths)} {diagram.strategy} bins)"
        ax.set_title(f"{self.name}: {title}" if self.name else title)
        handles, labels = ax.get_legend_handles_labels()
        histogram_handles, histogram_labels = histogram_ax.get_legend_handles_labels()
        ax.legend(handles + histogram_handles, labels + histogram_labels, loc="upper left", fontsize="small")

        self.ax_ = ax
        self.histogram_ax_ = histogram_ax
        self.figure_ = ax.figure
        return self
