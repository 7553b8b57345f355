"""Paired comparisons between groups that differ in one thing.

- ``synthetic vs real`` / ``mixed vs real``: each synthetic or mixed group against the real-only
  group of the same size, backbone and method;
- ``method vs baseline``: each method against the baseline (first) method on the same data;
- ``treatment vs plain``: each filtered, audit-weighted or robust-loss regime against the same
  data without the treatment;
- ``real-image source vs text-only``: each group whose source is guided by or tuned on real
  images (``generate: {init_images: ...}`` or ``{tune_on: real}``) against the group of a
  text-only source with the same data kind, size, synthetic count, backbone and method
  (equal numbers of synthetic images, paired by seed).

Differences are taken seed by seed (a t-interval over seeds) and, for accuracy, also test
example by test example (a paired bootstrap), see :mod:`synthaug.study.stats`.

:func:`augmentation_comparisons` pairs the groups of a study that ran classical augmentation
(regimes' ``augment``) into the three questions of
:class:`~synthaug.study.records.AugmentationComparison`: what generated images add over no
augmentation, over the best classical policy, and on top of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from synthaug.study.config import StudyConfig
from synthaug.study.groups import seed_stack
from synthaug.study.records import (
    AugmentationComparison,
    BootstrapInterval,
    ComparisonKind,
    GroupSummary,
    MetricDifference,
    PairedComparison,
    UnitResult,
    make_group_id,
)
from synthaug.study.stats import paired_bootstrap_difference, paired_difference

__all__ = ["COMPARED_METRICS", "augmentation_comparisons", "compare", "paired_comparisons"]

# Metrics compared between groups.
COMPARED_METRICS = ("accuracy", "ece", "nll", "brier")


def compare(
    kind: ComparisonKind,
    treatment: Sequence[UnitResult],
    baseline: Sequence[UnitResult],
    labels: np.ndarray,
    run_dir: Path,
    resamples: int,
) -> PairedComparison:
    """Paired differences (treatment - baseline) over seeds, and over test examples."""
    seeds = {
        metric: paired_difference(
            {result.seed: result.metrics[metric] for result in treatment},
            {result.seed: result.metrics[metric] for result in baseline},
        )
        for metric in COMPARED_METRICS
    }
    # Per-example correctness of each seed's model; the accuracy difference over test
    # examples is then a paired bootstrap of a mean.
    correct = [
        (seed_stack(results, "test", run_dir).argmax(axis=2) == labels).astype(np.float64)
        for results in (treatment, baseline)
    ]
    bootstrap = BootstrapInterval(*paired_bootstrap_difference(*correct, resamples=resamples, seed=0))
    differences = {
        metric: MetricDifference(interval, bootstrap if metric == "accuracy" else None)
        for metric, interval in seeds.items()
    }
    return PairedComparison(kind, treatment[0].group_id, baseline[0].group_id, differences)


def _pairs(config: StudyConfig, summaries: Sequence[GroupSummary]) -> list[tuple[ComparisonKind, str, str]]:
    """``(kind, treatment id, baseline id)`` of every comparison the study makes, in report order."""
    by_id = {group.group_id: group for group in summaries}
    pairs: list[tuple[ComparisonKind, str, str]] = []
    if config.plain_regime("real") is not None:
        for group in summaries:
            key = group.key  # against the real regime with the same augmentation, if there is one
            baseline = make_group_id(config.plain_regime("real", key.augment).name, key.size, key.backbone, key.method)
            if baseline in by_id and key.data != "real":
                kind: ComparisonKind = "synthetic vs real" if key.data == "synthetic" else "mixed vs real"
                pairs.append((kind, group.group_id, baseline))
    baseline_method = config.methods[0].name
    for group in summaries:
        key = group.key
        baseline = make_group_id(key.regime, key.size, key.backbone, baseline_method)
        if key.method != baseline_method and baseline in by_id:
            pairs.append(("method vs baseline", group.group_id, baseline))
    for regime in config.regimes:
        plain = config.untreated_counterpart(regime)
        if plain is None:
            continue
        for group in summaries:
            key = group.key
            baseline = make_group_id(plain.name, key.size, key.backbone, key.method)
            if key.regime == regime.name and baseline in by_id:
                pairs.append(("treatment vs plain", group.group_id, baseline))
    pairs += _real_image_source_pairs(config, summaries)
    return pairs


def _real_image_source_pairs(
    config: StudyConfig, summaries: Sequence[GroupSummary]
) -> list[tuple[ComparisonKind, str, str]]:
    """Guided or tuned source groups against the text-only source groups they match."""

    def made_from_real(name: str | None) -> bool | None:
        """True for a guided/tuned source, False for a text-only one, None for a folder or none."""
        if name is None or config.source(name).generate is None:
            return None
        spec = config.source(name).generate
        return spec.init_images is not None or spec.tune_on is not None

    def match(key) -> tuple:
        return (key.data, key.treatment, key.size, key.real_per_class, key.synthetic_per_class, key.backbone,
                key.method)  # fmt: skip

    text_only = {match(g.key): g.group_id for g in summaries if made_from_real(g.key.source) is False}
    return [
        ("real-image source vs text-only", group.group_id, text_only[match(group.key)])
        for group in summaries
        if made_from_real(group.key.source) and match(group.key) in text_only
    ]


def paired_comparisons(
    config: StudyConfig,
    summaries: Sequence[GroupSummary],
    results_by_group: Mapping[str, Sequence[UnitResult]],
    labels: np.ndarray,
    run_dir: Path,
) -> list[PairedComparison]:
    """Every comparison of the study (see the module docstring)."""
    return [
        compare(kind, results_by_group[treatment], results_by_group[baseline], labels, run_dir,
                config.bootstrap_resamples)
        for kind, treatment, baseline in _pairs(config, summaries)
    ]


def augmentation_comparisons(
    config: StudyConfig,
    summaries: Sequence[GroupSummary],
    results_by_group: Mapping[str, Sequence[UnitResult]],
    labels: np.ndarray,
    run_dir: Path,
) -> list[AugmentationComparison]:
    """Generated images against and on top of classical augmentation (X, Y, Z of
    :class:`~synthaug.study.records.AugmentationComparison`), one record per un-augmented real +
    generated group that has real + classical groups at its real size, backbone and method.

    Only plain groups (no filter, weights or method settings) take part, so that each pair
    differs in the generated images or the policy alone.
    """
    plain = [group for group in summaries if group.key.treatment is None]

    def model(key) -> tuple:
        return key.real_per_class, key.backbone, key.method

    real = {(model(g.key), g.key.augment): g for g in plain if g.key.data == "real"}
    mixed = {(model(g.key), g.key.source, g.key.synthetic_per_class, g.key.augment): g
             for g in plain if g.key.data == "mixed"}  # fmt: skip

    def paired(kind: ComparisonKind, treatment: GroupSummary | None, baseline: GroupSummary | None):
        if treatment is None or baseline is None:
            return None
        return compare(kind, results_by_group[treatment.group_id], results_by_group[baseline.group_id], labels,
                       run_dir, config.bootstrap_resamples)  # fmt: skip

    records = []
    for (setting, source, synthetic, augment), generated in mixed.items():
        if augment != "none":
            continue
        policies = {policy: g for (other, policy), g in real.items() if other == setting}
        classical = {policy: g for policy, g in policies.items() if policy != "none"}
        if not classical:
            continue  # no classical policy at this size: "mixed vs real" already answers it
        best = max(classical, key=lambda policy: classical[policy].metrics["accuracy"].mean)
        records.append(
            AugmentationComparison(
                real_per_class=setting[0],
                synthetic_per_class=synthetic,
                source=source,
                backbone=setting[1],
                method=setting[2],
                best_policy=best,
                policies={policy: g.metrics["accuracy"].mean for policy, g in policies.items()},
                over_none=paired("generated vs no augmentation", generated, policies.get("none")),
                over_best=paired("generated vs best classical", generated, classical[best]),
                on_top_of_best=paired("generated on top of best classical",
                                      mixed.get((setting, source, synthetic, best)), classical[best]),  # fmt: skip
            )
        )
    return records
