"""The question a study asks and its answer in a sentence or two, with the facts behind it.

The answer is about the *main setting*: the first backbone and the baseline (first) method,
the plain real-only regime against the first plain synthetic-only regime, at their largest
common size. The facts add the exchange rates of that pair, what adding synthetic images to
real ones changed, what each treatment changed, what generated images add against and on top of
the best classical augmentation (when the study ran any), and one line per other method that a reader
of the original study looks for: a recalibration method (its ECE, before and after) and a
method an original-study experiment used (its accuracy and NLL against the baseline).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from synthaug.study.config import StudyConfig
from synthaug.study.literature import reference_method_keys
from synthaug.study.records import (
    AugmentationComparison,
    ExchangeRateRow,
    GroupSummary,
    Headline,
    MainSetting,
    PairedComparison,
    SyntheticWorth,
)
from synthaug.study.text import interval_percent, interval_points, size_text

__all__ = ["augmentation_facts", "exchange_rate_facts", "headline", "main_setting"]


def main_setting(config: StudyConfig, summaries: Sequence[GroupSummary]) -> MainSetting | None:
    """The comparison the report leads with (see the module docstring); ``None`` when the study
    has no plain real and plain synthetic regime measured at a common size."""
    real, synthetic = config.plain_regime("real"), config.plain_regime("synthetic")
    if real is None or synthetic is None:
        return None
    backbone, method = config.backbones[0].name, config.methods[0].name
    model = (backbone, method)

    def sizes(regime: str) -> set[int]:
        return {g.key.size for g in summaries if (g.key.regime, g.key.backbone, g.key.method) == (regime, *model)}

    common = sorted(sizes(real.name) & sizes(synthetic.name))
    if not common:
        return None
    return MainSetting(common[-1], backbone, method, config.regime_source(synthetic).name, real.name, synthetic.name)


def _treatment_facts(
    by_id: dict[str, GroupSummary], comparisons: Sequence[PairedComparison], group_suffix: str = ""
) -> list[str]:
    """One sentence per "treatment vs plain" comparison whose treatment group ends with ``group_suffix``."""
    facts = []
    for comparison in comparisons:
        if comparison.kind == "treatment vs plain" and comparison.treatment.endswith(group_suffix):
            treatment, baseline = by_id[comparison.treatment].key, by_id[comparison.baseline].key
            difference = comparison.differences["accuracy"].seeds
            facts.append(
                f"{treatment.regime} vs {baseline.regime} at {treatment.size} per class "
                f"({treatment.treatment}): accuracy {interval_points(difference)} points (mean [95 % CI])."
            )
    return facts


def _answer(main: MainSetting, real: GroupSummary, synthetic: GroupSummary, worth: SyntheticWorth | None) -> str:
    source = main.source
    if worth is None:
        answer = f"Synthetic data from {source} was measured at one size only"
    elif worth.status == "interpolated":
        m, n = worth.synthetic_per_class, worth.real_per_class
        answer = (
            f"{m} {source} images per class are worth about {size_text(n)} real images per class "
            f"(≈ {m / n:.1f} synthetic images per real one)"
        )
    elif worth.status == "not_reached":
        answer = (
            f"{worth.synthetic_per_class} {source} images per class beat every real-only size measured "
            f"(up to {worth.largest_real} per class)"
        )
    else:
        answer = (
            f"{worth.synthetic_per_class} {source} images per class are worth less than the smallest real set "
            f"measured ({worth.smallest_real} real images per class)"
        )
    real_accuracy = interval_percent(real.metrics["accuracy"])
    synthetic_accuracy = interval_percent(synthetic.metrics["accuracy"])
    return answer + (
        f". Trained on {main.size} images per class, {main.backbone}/{main.method} reaches {real_accuracy} on the real "
        f"test set with real images and {synthetic_accuracy} with {source} images (mean ± 95 % CI over seeds)."
    )


def _listed(items: Sequence[str]) -> str:
    """``"10, 30 and 80"``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _where(n: int | Sequence[int], real_regime: str | None) -> str:
    sizes = str(n) if isinstance(n, int) else _listed([str(size) for size in n])
    augmented = "" if real_regime is None else f" augmented ({real_regime})"
    return f"at {sizes} real images per class{augmented}"


def _unreached_fact(rates: Sequence[ExchangeRateRow]) -> str:
    """One line for every size of one real curve that the synthetic curve never reaches."""
    first = rates[0]
    below = _listed([f"{100 * rate.estimate.real_accuracy:.1f}" for rate in rates])
    return (
        f"Exchange rate {_where([rate.estimate.real_per_class for rate in rates], first.real_regime)}: not reached "
        f"— {first.largest_synthetic} synthetic images per class stay below {below} %"
        f"{' respectively' if len(rates) > 1 else ''}."
    )


def exchange_rate_facts(rates: Sequence[ExchangeRateRow]) -> list[str]:
    """A line per exchange rate, except that the sizes a synthetic curve never reaches share one
    line per real curve (five "not reached" lines in a row said one thing five times)."""
    lines: list[str | list[ExchangeRateRow]] = []
    unreached: dict[tuple[str, str | None], list[ExchangeRateRow]] = {}
    for rate in rates:
        estimate = rate.estimate
        if estimate.status == "not_reached":
            key = (rate.synthetic_regime, rate.real_regime)
            if key not in unreached:
                unreached[key] = []
                lines.append(unreached[key])
            unreached[key].append(rate)
            continue
        bound = "≤ " if estimate.status == "at_or_below" else ""
        high = "not reached" if math.isinf(estimate.rate_high) else f"{estimate.rate_high:.1f}"
        lines.append(
            f"Exchange rate {_where(estimate.real_per_class, rate.real_regime)}: {bound}{estimate.rate:.1f} synthetic "
            f"per real ({bound}{size_text(estimate.synthetic_per_class)} synthetic images per class; 95 % interval "
            f"{estimate.rate_low:.1f} – {high})."
        )
    return [line if isinstance(line, str) else _unreached_fact(line) for line in lines]


def augmentation_facts(augmentation: Sequence[AugmentationComparison], backbone: str, method: str) -> list[str]:
    """One sentence per real size: what generated images add over no augmentation (X), over
    the best classical policy (Y) and on top of it (Z), accuracy and ECE, paired by seed."""

    def difference(comparison: PairedComparison | None, what: str) -> str | None:
        if comparison is None:
            return None
        accuracy = interval_points(comparison.differences["accuracy"].seeds)
        ece = interval_points(comparison.differences["ece"].seeds)
        return f"{accuracy} points {what} (ECE {ece})"

    facts = []
    for record in augmentation:
        if (record.backbone, record.method) != (backbone, method):
            continue
        parts = [
            difference(record.over_none, "over no augmentation"),
            difference(record.over_best, f"over {record.best_policy}, the best classical policy the study ran"),
            difference(record.on_top_of_best, f"on top of {record.best_policy}"),
        ]
        facts.append(
            f"At {record.real_per_class} real images per class, {record.synthetic_per_class} {record.source} images "
            f"per class add {'; '.join(part for part in parts if part)} (mean [95 % CI] over seeds)."
        )
    return facts


def _method_facts(
    config: StudyConfig, main: MainSetting, by_id: dict[str, GroupSummary], comparisons: Sequence[PairedComparison]
) -> list[str]:
    """A line per other method that says what it is (see the module docstring)."""
    from synthaug.methods import METHODS  # the registry imports torch; the analysis runs after training

    by_pair = {(c.treatment, c.baseline): c for c in comparisons if c.kind == "method vs baseline"}
    referenced = reference_method_keys()
    facts = []
    for spec in config.methods[1:]:
        recalibrates = METHODS.get(spec.key).recalibrates
        if not recalibrates and spec.key not in referenced:
            continue  # the others are in the tables
        for regime in (main.real_regime, main.synthetic_regime):
            treatment, baseline = by_id.get(main.group_id(regime, spec.name)), by_id.get(main.group_id(regime))
            if treatment is None or baseline is None:
                continue
            trained_on = "real" if regime == main.real_regime else main.source
            if recalibrates:
                before, after = interval_percent(baseline.metrics["ece"]), interval_percent(treatment.metrics["ece"])
                facts.append(f"{spec.name} on {trained_on} images: ECE {before} → {after}.")
            else:
                difference = by_pair[(treatment.group_id, baseline.group_id)].differences["accuracy"].seeds
                nll_before, nll_after = baseline.metrics["nll"].mean, treatment.metrics["nll"].mean
                facts.append(
                    f"{spec.name} vs {main.method} on {trained_on} images: accuracy {interval_points(difference)} "
                    f"points (mean [95 % CI]), NLL {nll_before:.3f} → {nll_after:.3f}."
                )
    return facts


def headline(
    config: StudyConfig,
    summaries: Sequence[GroupSummary],
    rates: Sequence[ExchangeRateRow],
    worth: Sequence[SyntheticWorth],
    comparisons: Sequence[PairedComparison],
    augmentation: Sequence[AugmentationComparison] = (),
) -> Headline:
    """The question and the answer the report opens with, and the few facts behind it."""
    by_id = {group.group_id: group for group in summaries}
    main = main_setting(config, summaries)
    if main is None:
        # No real-vs-synthetic pair to answer the question with (e.g. a study of synthetic
        # regimes only): the treatments still get their paired comparisons.
        facts = augmentation_facts(augmentation, config.backbones[0].name, config.methods[0].name)
        return Headline(config.title, "", facts + _treatment_facts(by_id, comparisons), None)
    model = (main.backbone, main.method)
    main_worth = next(
        (w for w in worth if (w.synthetic_regime, w.backbone, w.method) == (main.synthetic_regime, *model)), None
    )
    answer = _answer(main, by_id[main.group_id(main.real_regime)], by_id[main.group_id(main.synthetic_regime)],
                     main_worth)
    main_curve = (main.synthetic_regime, *model)
    facts = exchange_rate_facts(
        [rate for rate in rates if (rate.synthetic_regime, rate.backbone, rate.method) == main_curve]
    )
    facts += augmentation_facts(augmentation, *model)
    # "Adding generated images" lines that an augmentation line above already states (its X, with
    # neither augmented, and its Z, both with the best policy) are left out.
    stated = {
        (record.real_per_class, record.synthetic_per_class, record.source, policy)
        for record in augmentation
        if (record.backbone, record.method) == model
        for policy, comparison in (("none", record.over_none), (record.best_policy, record.on_top_of_best))
        if comparison is not None
    }
    suffix = f"/{main.backbone}/{main.method}"
    for comparison in comparisons:
        if comparison.kind == "mixed vs real" and comparison.treatment.endswith(suffix):
            treatment = by_id[comparison.treatment].key
            setting = (treatment.real_per_class, treatment.synthetic_per_class, treatment.source, treatment.augment)
            if treatment.treatment is None and setting in stated:
                continue
            difference = comparison.differences["accuracy"].seeds
            augmented = "" if treatment.augment == "none" else f", both with {treatment.augment}"
            facts.append(
                f"Adding {treatment.synthetic_per_class} {treatment.source or 'synthetic'} images per class to "
                f"{treatment.real_per_class} real ones{augmented}: accuracy {interval_points(difference)} points "
                "(mean [95 % CI])."
            )
    facts += _treatment_facts(by_id, comparisons, suffix)
    facts += _method_facts(config, main, by_id, comparisons)
    return Headline(config.title, answer, facts, main)
