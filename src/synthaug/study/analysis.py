"""Everything the report shows, computed once from the results log and saved predictions.

:func:`analyze_study` reads the study's :class:`~synthaug.study.records.UnitResult` and the
prediction files they point to, and writes ``RUN_DIR/analysis.json``, the serialisation of a
:class:`~synthaug.study.records.StudyAnalysis`. Each step has its module:

- :mod:`~synthaug.study.groups`: per-group means, intervals and figure data;
- :mod:`~synthaug.study.curves`: learning curves, exchange rates, what synthetic sets are worth;
- :mod:`~synthaug.study.comparisons`: paired comparisons between groups, and generated images
  against and on top of classical augmentation;
- :mod:`~synthaug.study.provenance`: what made each synthetic source, and sample images;
- :mod:`~synthaug.study.headline`: the answer the report opens with;
- :mod:`~synthaug.study.shift`: metrics against corruption severity, and whether each
  sampling method's epistemic score separates OOD data (its verdict);
- :mod:`~synthaug.study.targeted`: the targeted regimes' curves and their comparisons with uniform;
- :mod:`~synthaug.study.summary`: ``summary.csv`` and ``summary.md``.

The report (:mod:`synthaug.report.build`) only draws this data, so ``synthaug report RUN_DIR``
re-renders without touching a model ("compute once, draw after").
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from synthaug.errors import ConfigError
from synthaug.fileio import atomic_write_text, from_json_value, to_json_value
from synthaug.study.comparisons import augmentation_comparisons, paired_comparisons
from synthaug.study.config import StudyConfig
from synthaug.study.curves import exchange_rates, learning_curves, synthetic_worth
from synthaug.study.data import StudyData
from synthaug.study.groups import group_results, summarize_group
from synthaug.study.headline import headline
from synthaug.study.provenance import generator_provenance
from synthaug.study.records import StudyAnalysis, UnitResult, derived_group_statistics
from synthaug.study.run_folder import ANALYSIS_FILE, RunFolder
from synthaug.study.targeted import targeted_analysis

__all__ = ["ANALYSIS_FILE", "analyze_study", "read_analysis", "write_analysis"]



def analyze_study(
    config: StudyConfig, data: StudyData, results: Sequence[UnitResult], run_dir: str | os.PathLike[str]
) -> StudyAnalysis:
    """Compute everything the report shows and write ``analysis.json``.

    Args:
        config: The study config.
        data: The study's datasets (class names, test labels, synthetic folders).
        results: One result per unit.
        run_dir: The run folder (prediction paths in results are relative to it).

    Returns:
        The analysis, as written to ``analysis.json``.
    """
    run_dir = Path(run_dir)
    labels = data.test.targets
    by_group = group_results(results)
    groups = [
        summarize_group(members, labels, list(data.ood), len(data.classes), run_dir, config.bootstrap_resamples)
        for members in by_group.values()
    ]
    curves = learning_curves(config, groups, by_group)
    rates = exchange_rates(config, curves)
    worth = synthetic_worth(config, curves)
    comparisons = paired_comparisons(config, groups, by_group, labels, run_dir)
    augmentation = augmentation_comparisons(config, groups, by_group, labels, run_dir)
    generators, samples = {}, {}
    for name, directory in data.synthetic_dirs.items():
        generators[name], samples[name] = generator_provenance(name, directory, data.classes)
    dataset_sizes = {
        "pool": len(data.pool),
        "val": len(data.val),
        "test": len(data.test),
        **{f"ood:{name}": len(d) for name, d in data.ood.items()},
    }
    shift_curves, epistemic = derived_group_statistics(groups, list(data.ood), dataset_sizes)
    targeted_curves, targeted_comparisons = targeted_analysis(config, list(results), run_dir)
    analysis = StudyAnalysis(
        title=config.title,
        classes=list(data.classes),
        ood_sets=list(data.ood),
        dataset_sizes=dataset_sizes,
        baseline_method=config.methods[0].name,
        groups=groups,
        curves=curves,
        exchange_rates=rates,
        worth=worth,
        comparisons=comparisons,
        generators=generators,
        samples=samples,
        headline=headline(config, groups, rates, worth, comparisons, augmentation),
        shift_curves=shift_curves,
        epistemic=epistemic,
        targeted_curves=targeted_curves,
        targeted_comparisons=targeted_comparisons,
        augmentation=augmentation,
    )
    write_analysis(analysis, run_dir)
    return analysis


def write_analysis(analysis: StudyAnalysis, run_dir: str | os.PathLike[str]) -> Path:
    """Write ``RUN_DIR/analysis.json``: strict JSON (``nan``/``inf`` as strings)."""
    path = RunFolder(run_dir).analysis
    atomic_write_text(path, json.dumps(to_json_value(analysis.to_dict()), indent=1, allow_nan=False))
    return path


def read_analysis(run_dir: str | os.PathLike[str]) -> StudyAnalysis:
    """The analysis a study saved in ``run_dir``.

    Raises:
        ConfigError: ``run_dir`` holds no finished study (no ``analysis.json``), or the file
            is not valid JSON.
    """
    run_dir = Path(run_dir)
    path = RunFolder(run_dir).analysis
    if not path.is_file():
        raise ConfigError(
            f"{run_dir}: no {ANALYSIS_FILE} here; run `synthaug study CONFIG --out {run_dir}` first "
            "(a study interrupted before its end writes it when rerun)"
        )
    try:
        data = from_json_value(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON ({error}); rerun the study to rewrite it") from error
    try:
        analysis = StudyAnalysis.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{path}: not a study analysis ({type(error).__name__}: {error}); rerun the study "
                          "to rewrite it") from error
    if "targeted_curves" not in data:  # written before the targeted records were part of the analysis
        analysis = _with_targeted_records(analysis, run_dir)
    return analysis


def _with_targeted_records(analysis: StudyAnalysis, run_dir: Path) -> StudyAnalysis:
    """``analysis`` with the targeted curves and comparisons of an older run folder, computed
    from its saved config and results (the report of such a folder once did this itself)."""
    import dataclasses

    from synthaug.study.results import read_results

    folder = RunFolder(run_dir)
    config = folder.saved_config()
    if config is None or not folder.results.is_file() or not any(regime.targeted for regime in config.regimes):
        return analysis
    curves, comparisons = targeted_analysis(config, read_results(folder.results), run_dir)
    return dataclasses.replace(analysis, targeted_curves=curves, targeted_comparisons=comparisons)
