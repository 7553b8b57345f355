"""Learning curves and what synthetic images are worth in real ones.

A learning curve is one regime's accuracy and ECE against images per class, for one backbone
and method. Each synthetic curve is read against the real-only curve of the same model: the
exchange rate at each configured real size (:func:`synthaug.study.stats.exchange_rate`) and
what its largest synthetic set is worth in real images (:func:`synthaug.study.stats.size_to_match`).
When the study also ran real images with classical augmentation at several sizes, each
synthetic curve is read against the best such curve too (the highest mean accuracy over its
sizes): what generated images are worth to someone who already augments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from synthaug.study.config import StudyConfig
from synthaug.study.records import ExchangeRateRow, GroupSummary, LearningCurve, SyntheticWorth, UnitResult
from synthaug.study.stats import exchange_rate, size_to_match

__all__ = ["exchange_rates", "learning_curves", "synthetic_worth"]


def _curve(
    summaries: Sequence[GroupSummary], results_by_group: Mapping[str, Sequence[UnitResult]],
    regime: str, backbone: str, method: str,
) -> LearningCurve | None:
    members = sorted(
        (g for g in summaries if (g.key.regime, g.key.backbone, g.key.method) == (regime, backbone, method)),
        key=lambda g: g.key.size,
    )
    if not members:
        return None
    return LearningCurve(
        regime=regime,
        data=members[0].key.data,
        source=members[0].key.source,
        backbone=backbone,
        method=method,
        sizes=[g.key.size for g in members],
        accuracy=[g.metrics["accuracy"] for g in members],
        ece=[g.metrics["ece"] for g in members],
        by_seed={
            g.key.size: {result.seed: result.metrics["accuracy"] for result in results_by_group[g.group_id]}
            for g in members
        },
    )


def learning_curves(
    config: StudyConfig, summaries: Sequence[GroupSummary], results_by_group: Mapping[str, Sequence[UnitResult]]
) -> list[LearningCurve]:
    """One curve per regime, backbone and method that has several sizes (and every mixed one)."""
    curves = []
    for regime in config.regimes:
        for backbone in config.backbones:
            for method in config.regime_methods(regime):
                curve = _curve(summaries, results_by_group, regime.name, backbone.name, method.name)
                if curve is not None and (len(curve.sizes) > 1 or regime.data == "mixed"):
                    curves.append(curve)
    return curves


def _pairs(config: StudyConfig, curves: Sequence[LearningCurve]) -> list[tuple[LearningCurve, LearningCurve]]:
    """Each synthetic curve with the real-only curve of the same backbone and method."""
    real_regime = config.plain_regime("real")
    if real_regime is None:
        return []
    real_curves = {(c.backbone, c.method): c for c in curves if c.regime == real_regime.name}
    return [
        (curve, real_curves[(curve.backbone, curve.method)])
        for curve in curves
        if curve.data == "synthetic" and (curve.backbone, curve.method) in real_curves
    ]


def _best_augmented_real(config: StudyConfig, curves: Sequence[LearningCurve]) -> dict[tuple[str, str], LearningCurve]:
    """The augmented real curve of each backbone and method with the highest mean accuracy."""
    augmented = {
        regime.name
        for regime in config.regimes
        if regime.data == "real" and regime.treatment is None and config.augment_label(regime) != "none"
    }
    best: dict[tuple[str, str], LearningCurve] = {}
    for curve in curves:
        model = (curve.backbone, curve.method)
        mean = sum(a.mean for a in curve.accuracy) / len(curve.accuracy)
        if curve.regime in augmented and (model not in best or mean > sum(
                a.mean for a in best[model].accuracy) / len(best[model].accuracy)):  # fmt: skip
            best[model] = curve
    return best


def exchange_rates(config: StudyConfig, curves: Sequence[LearningCurve]) -> list[ExchangeRateRow]:
    """The exchange rate of every synthetic curve at each real size of ``exchange_rate_at``
    (default: every real size), against the plain real curve and, when the study has one,
    the best augmented real curve (rows with ``real_regime`` set)."""
    real_regime = config.plain_regime("real")
    augmented = _best_augmented_real(config, curves)
    pairs = [(curve, real, None) for curve, real in _pairs(config, curves)]
    pairs += [(curve, augmented[(curve.backbone, curve.method)], augmented[(curve.backbone, curve.method)].regime)
              for curve, _ in _pairs(config, curves) if (curve.backbone, curve.method) in augmented]  # fmt: skip
    rates = []
    for curve, real, reference in pairs:
        for n in config.exchange_rate_at or (real_regime.sizes if reference is None else real.sizes):
            if n not in real.sizes:
                continue
            estimate = exchange_rate(
                real.by_seed, curve.by_seed, n, resamples=config.bootstrap_resamples, seed=0
            )
            rates.append(
                ExchangeRateRow(
                    synthetic_regime=curve.regime,
                    source=curve.source,
                    backbone=curve.backbone,
                    method=curve.method,
                    largest_synthetic=max(curve.sizes),
                    estimate=estimate,
                    real_regime=reference,
                    source_kind=config.source(curve.source).kind if curve.source else "generated",
                )
            )
    return rates


def synthetic_worth(config: StudyConfig, curves: Sequence[LearningCurve]) -> list[SyntheticWorth]:
    """What the largest set of every synthetic curve is worth in real images per class."""
    worth = []
    for curve, real in _pairs(config, curves):
        synthetic_accuracy = curve.accuracy[-1].mean
        match = size_to_match(real.sizes, [a.mean for a in real.accuracy], synthetic_accuracy)
        worth.append(
            SyntheticWorth(
                synthetic_regime=curve.regime,
                source=curve.source,
                backbone=curve.backbone,
                method=curve.method,
                synthetic_per_class=max(curve.sizes),
                synthetic_accuracy=synthetic_accuracy,
                real_per_class=match.size,
                status=match.status,
                smallest_real=min(real.sizes),
                largest_real=max(real.sizes),
            )
        )
    return worth
