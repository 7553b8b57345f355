"""Two report sections: calibration under dataset shift, and whether the
epistemic score means anything.

:func:`shift_section` draws accuracy, ECE and NLL against corruption severity (0 = the clean
test set, 1..5 averaged over the corruptions) for each method, trained on real (solid) and on
synthetic images (dashed), from the ``shift:<corruption>:<severity>:<metric>`` metrics the
study records when its config has ``shift`` (:mod:`synthaug.study.shift`), and tabulates
severity 5 against the clean set, saying whether each sampling method's ECE there is below the
deterministic network's (Ovadia et al. 2019 found it mostly is; a method where it is not is
named, not hidden).

:func:`epistemic_verdict` says whether an epistemic score (mutual information) separates OOD
from in-distribution data: its OOD AUROC with a 95 % interval — over seeds when there are
several, and never narrower than the Hanley & McNeil (1982) standard error of one AUROC on
these set sizes — and a flag when the interval reaches 0.5 (chance) or lies below it. An
epistemic estimate at chance is then shown as such, not as a finding.

References:
    Ovadia et al., "Can You Trust Your Model's Uncertainty? Evaluating Predictive
    Uncertainty Under Dataset Shift", NeurIPS 2019.
    Hanley & McNeil, "The Meaning and Use of the Area under a Receiver Operating
    Characteristic (ROC) Curve", Radiology 1982.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from synthaug.study.records import GroupSummary, StudyAnalysis
from synthaug.study.shift import parse_shift_metric_key
from synthaug.study.stats import Interval

__all__ = [
    "EpistemicVerdict",
    "epistemic_verdict",
    "epistemic_verdicts",
    "has_shift",
    "shift_figure",
    "shift_section",
    "shift_table",
]

#: ``[(method, [(column title, group), ...]), ...]``, as in :mod:`synthaug.report.build`.
Panels = Sequence[tuple[str, Sequence[tuple[str, GroupSummary]]]]

_PLOTTED = (("accuracy", "accuracy (%)", 100.0), ("ece", "ECE (%)", 100.0), ("nll", "NLL", 1.0))
# Below this AUROC an epistemic score is called weak even when its interval excludes chance.
_WEAK_AUROC = 0.7


@dataclass(frozen=True)
class EpistemicVerdict:
    """Whether an epistemic score separates OOD from in-distribution data.

    Attributes:
        auroc: Mean OOD AUROC of the score.
        low: Lower end of its 95 % interval.
        high: Upper end.
        status: ``"separates"``, ``"weak"`` (interval above 0.5, mean below 0.7),
            ``"chance"`` (interval contains 0.5) or ``"inverted"`` (interval below 0.5: the
            score is *lower* on OOD data).
    """

    auroc: float
    low: float
    high: float
    status: str

    @property
    def is_finding(self) -> bool:
        """Whether the score may be presented as epistemic uncertainty that detects OOD data."""
        return self.status == "separates"

    def text(self) -> str:
        """``"0.97 [0.96, 0.98]: separates"`` or ``"0.51 [0.47, 0.55]: at chance, not a finding"``."""
        words = {
            "separates": "separates OOD",
            "weak": "weak",
            "chance": "at chance: not a finding",
            "inverted": "lower on OOD than in-distribution: not a finding",
        }[self.status]
        return f"{self.auroc:.2f} [{self.low:.2f}, {self.high:.2f}]: {words}"


def _hanley_mcneil_se(auroc: float, n_positive: int, n_negative: int) -> float:
    """Standard error of one AUROC from ``n_positive`` OOD and ``n_negative`` test examples."""
    q1, q2 = auroc / (2.0 - auroc), 2.0 * auroc**2 / (1.0 + auroc)
    variance = (
        auroc * (1.0 - auroc) + (n_positive - 1) * (q1 - auroc**2) + (n_negative - 1) * (q2 - auroc**2)
    ) / (n_positive * n_negative)
    return math.sqrt(max(variance, 0.0))


def epistemic_verdict(interval: Interval | None, n_ood: int, n_test: int) -> EpistemicVerdict | None:
    """The verdict on an OOD AUROC of mutual information (``None`` when there is none).

    Args:
        interval: The AUROC over seeds (mean and t-interval; no interval with one seed).
        n_ood: Images in the OOD set.
        n_test: Images in the in-distribution test set.
    """
    if interval is None or math.isnan(interval.mean):
        return None
    half_width = 1.96 * _hanley_mcneil_se(interval.mean, max(n_ood, 1), max(n_test, 1))
    low, high = interval.mean - half_width, interval.mean + half_width
    if not math.isnan(interval.low):  # the seeds' interval, where it is the wider one
        low, high = min(low, interval.low), max(high, interval.high)
    if high < 0.5:
        status = "inverted"
    elif low <= 0.5:
        status = "chance"
    elif interval.mean < _WEAK_AUROC:
        status = "weak"
    else:
        status = "separates"
    return EpistemicVerdict(interval.mean, max(low, 0.0), min(high, 1.0), status)


def _by_severity(group: GroupSummary, metric: str) -> dict[int, float]:
    """Severity -> the metric averaged over corruptions; severity 0 is the clean test set."""
    values: dict[int, list[float]] = {}
    for key, interval in group.metrics.items():
        parsed = parse_shift_metric_key(key)
        if parsed is not None and parsed[1] == metric:
            values.setdefault(parsed[0].severity, []).append(interval.mean)
    if not values:
        return {}
    clean = group.metrics.get(metric)
    curve = {severity: sum(v) / len(v) for severity, v in sorted(values.items())}
    return {0: clean.mean, **curve} if clean is not None else curve


def has_shift(analysis: StudyAnalysis) -> bool:
    """Whether the study recorded metrics on shifted test sets."""
    return any(parse_shift_metric_key(key) for group in analysis.groups for key in group.metrics)


def shift_figure(panels: Panels) -> Figure | None:
    """Accuracy, ECE and NLL against severity: one colour per method, solid for the first
    column of each panel (trained on real), dashed for the others (synthetic)."""
    lines = [
        (method, index, title, group)
        for method, columns in panels
        for index, (title, group) in enumerate(columns)
        if _by_severity(group, "accuracy")
    ]
    if not lines:
        return None
    figure = Figure(figsize=(12, 3.8), layout="constrained")
    axes = figure.subplots(1, len(_PLOTTED))
    methods = list(dict.fromkeys(method for method, *_ in lines))
    colours = {method: f"C{i % 10}" for i, method in enumerate(methods)}
    for ax, (metric, label, scale) in zip(axes, _PLOTTED, strict=True):
        for method, index, title, group in lines:
            curve = _by_severity(group, metric)
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


def shift_table(panels: Panels, baseline_method: str = "deterministic") -> list[dict[str, Any]]:
    """Clean vs severity 5, per method and training data, and whether ECE at severity 5 is
    below the deterministic network's trained on the same data."""
    deterministic: dict[str, float] = {}
    for method, columns in panels:
        if method == baseline_method:
            for title, group in columns:
                curve = _by_severity(group, "ece")
                if 5 in curve:
                    deterministic[title] = curve[5]
    rows = []
    for method, columns in panels:
        for title, group in columns:
            curves = {metric: _by_severity(group, metric) for metric, _, _ in _PLOTTED}
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
                    "accuracy": f"{100 * curves['accuracy'].get(0, math.nan):.1f} → {100 * curves['accuracy'][5]:.1f} %",
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
    return {"figure": shift_figure(panels), "table": shift_table(panels, analysis.baseline_method)}


def epistemic_verdicts(analysis: StudyAnalysis, group: GroupSummary) -> dict[str, str]:
    """For each OOD set, the verdict text on the group's mutual-information AUROC ("–" for a
    single-network method, which has no epistemic part)."""
    verdicts = {}
    for name in analysis.ood_sets:
        verdict = None
        if group.has_weight_samples:
            verdict = epistemic_verdict(
                group.metrics.get(f"{name}:ood_auroc_mutual_information"),
                analysis.dataset_sizes.get(f"ood:{name}", 0),
                analysis.dataset_sizes.get("test", 0),
            )
        verdicts[name] = "–" if verdict is None else verdict.text()
    return verdicts
