"""Two report sections: calibration under dataset shift, and whether the
epistemic score means anything. Both only draw records of the analysis.

:func:`shift_section` draws accuracy, ECE and NLL against corruption severity (0 = the clean
test set, 1..5 averaged over the corruptions: ``StudyAnalysis.shift_curves``, computed by
:func:`synthaug.study.shift.severity_curves`) for each method, trained on real (solid) and on
synthetic images (dashed), and tabulates severity 5 against the clean set, saying whether each
sampling method's ECE there is below the deterministic network's (Ovadia et al. 2019 found it
mostly is; a method where it is not is named, not hidden).

:func:`epistemic_verdicts` shows, per OOD set, the verdict the analysis reached on a sampling
method's mutual-information AUROC (``StudyAnalysis.epistemic``, from
:func:`synthaug.study.shift.epistemic_verdict`).

References:
    Ovadia et al., "Can You Trust Your Model's Uncertainty? Evaluating Predictive
    Uncertainty Under Dataset Shift", NeurIPS 2019.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

from synthaug.study.records import GroupSummary, StudyAnalysis

__all__ = [
    "epistemic_verdicts",
    "has_shift",
    "shift_figure",
    "shift_section",
    "shift_table",
]

#: ``[(method, [(column title, group), ...]), ...]``, as in :mod:`synthaug.report.build`.
Panels = Sequence[tuple[str, Sequence[tuple[str, GroupSummary]]]]

_PLOTTED = (("accuracy", "accuracy (%)", 100.0), ("ece", "ECE (%)", 100.0), ("nll", "NLL", 1.0))


def _by_severity(analysis: StudyAnalysis, group: GroupSummary, metric: str) -> dict[int, float]:
    """Severity -> the metric averaged over corruptions, as the analysis saved it."""
    return analysis.shift_curves.get(group.group_id, {}).get(metric, {})


def has_shift(analysis: StudyAnalysis) -> bool:
    """Whether the study recorded metrics on shifted test sets."""
    return bool(analysis.shift_curves)


def shift_figure(analysis: StudyAnalysis, panels: Panels) -> Figure | None:
    """Accuracy, ECE and NLL against severity: one colour per method, solid for the first
    column of each panel (trained on real), dashed for the others (synthetic)."""
    lines = [
        (method, index, title, group)
        for method, columns in panels
        for index, (title, group) in enumerate(columns)
        if _by_severity(analysis, group, "accuracy")
    ]
    if not lines:
        return None
    figure = Figure(figsize=(12, 3.8), layout="constrained")
    axes = figure.subplots(1, len(_PLOTTED))
    methods = list(dict.fromkeys(method for method, *_ in lines))
    colours = {method: f"C{i % 10}" for i, method in enumerate(methods)}
    for ax, (metric, label, scale) in zip(axes, _PLOTTED, strict=True):
        for method, index, title, group in lines:
            curve = _by_severity(analysis, group, metric)
            ax.plot(
                list(curve),
                [scale * value for value in curve.values()],
                color=colours[method],
                linestyle="-" if index == 0 else "--",
                marker="o",
                markersize=3,
                label=f"{method}, {title}",
            )
        ax.set_xlabel("corruption severity (0 = clean test set)")
        ax.set_ylabel(label)
        ax.set_xticks(range(6))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return figure


def shift_table(analysis: StudyAnalysis, panels: Panels) -> list[dict[str, Any]]:
    """Clean vs severity 5, per method and training data, and whether ECE at severity 5 is
    below the deterministic network's trained on the same data."""
    baseline_method = analysis.baseline_method
    deterministic: dict[str, float] = {}
    for method, columns in panels:
        if method == baseline_method:
            for title, group in columns:
                curve = _by_severity(analysis, group, "ece")
                if 5 in curve:
                    deterministic[title] = curve[5]
    rows = []
    for method, columns in panels:
        for title, group in columns:
            curves = {metric: _by_severity(analysis, group, metric) for metric, _, _ in _PLOTTED}
            if 5 not in curves["accuracy"]:
                continue
            reference = deterministic.get(title)
            if method == baseline_method or reference is None or not group.has_weight_samples:
                below = "–"
            else:
                below = "yes" if curves["ece"][5] < reference else "no"
            rows.append(
                {
                    "method": method,
                    "training": title,
                    "accuracy": (
                        f"{100 * curves['accuracy'].get(0, math.nan):.1f} → {100 * curves['accuracy'][5]:.1f} %"
                    ),
                    "ece": f"{100 * curves['ece'].get(0, math.nan):.1f} → {100 * curves['ece'][5]:.1f} %",
                    "nll": f"{curves['nll'].get(0, math.nan):.3f} → {curves['nll'][5]:.3f}",
                    "ece_below_deterministic": below,
                }
            )
    return rows


def shift_section(analysis: StudyAnalysis, panels: Panels) -> dict[str, Any] | None:
    """The template's ``shift`` section: the figure (a Figure, drawn by the caller) and the
    table; ``None`` when the study had no ``shift`` config."""
    if not has_shift(analysis):
        return None
    return {"figure": shift_figure(analysis, panels), "table": shift_table(analysis, panels)}


def epistemic_verdicts(analysis: StudyAnalysis, group: GroupSummary) -> dict[str, str]:
    """For each OOD set, the verdict text on the group's mutual-information AUROC ("–" for a
    single-network method, which has no epistemic part, or a set without the metric)."""
    verdicts = analysis.epistemic.get(group.group_id, {})
    return {name: verdicts[name].text() if name in verdicts else "–" for name in analysis.ood_sets}
