"""The study's short summaries: ``summary.csv`` (one line per group) and ``summary.md`` (the
answer, its facts and one table), both written from the analysis."""

from __future__ import annotations

import csv
import io
import os

from synthaug.fileio import atomic_write_text
from synthaug.study.records import StudyAnalysis
from synthaug.study.run_folder import SUMMARY_CSV, SUMMARY_MD, RunFolder
from synthaug.study.text import interval_percent, training_data_text

__all__ = ["SUMMARY_CSV", "SUMMARY_MD", "summary_csv", "summary_markdown", "write_summary_files",
           "write_summary_markdown"]


KEY_COLUMNS = ("regime", "data", "source", "size", "real_per_class", "synthetic_per_class", "backbone", "method")


def summary_csv(analysis: StudyAnalysis) -> str:
    """One line per group: its key, seeds, and mean, interval and spread of every metric."""
    groups = analysis.groups
    metrics = sorted({name for group in groups for name in group.metrics})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = [*KEY_COLUMNS, "treatment", "n_seeds"]
    for name in metrics:
        header += [f"{name}_mean", f"{name}_ci_low", f"{name}_ci_high", f"{name}_std"]
    header += ["accuracy_test_bootstrap_low", "accuracy_test_bootstrap_high"]
    writer.writerow(header)
    for group in groups:
        key = group.key.to_dict()
        line = [key[column] for column in KEY_COLUMNS]
        line += [group.key.treatment or "", len(group.seeds)]
        for name in metrics:
            interval = group.metrics.get(name)
            line += ["", "", "", ""] if interval is None else [interval.mean, interval.low, interval.high, interval.std]
        accuracy = group.test_bootstrap["accuracy"]
        line += [accuracy.low, accuracy.high]
        writer.writerow(line)
    return buffer.getvalue()


def summary_markdown(analysis: StudyAnalysis) -> str:
    """A short Markdown summary: the answer, the key facts and one table."""
    headline = analysis.headline
    ood = analysis.ood_sets[0] if analysis.ood_sets else None
    lines = [
        f"# {headline.question}",
        "",
        headline.answer or "(no real-vs-synthetic comparison in this study)",
        "",
    ]
    lines += [f"- {fact}" for fact in headline.facts]
    lines += [
        "",
        "| regime | per class | backbone | method | accuracy | ECE | NLL |" + (f" AUROC ({ood}) |" if ood else ""),
        "|---|---|---|---|---|---|---|" + ("---|" if ood else ""),
    ]
    for group in analysis.groups:
        m = group.metrics
        cells = [
            group.key.regime,
            training_data_text(group.key),
            group.key.backbone,
            group.key.method,
            interval_percent(m["accuracy"]),
            interval_percent(m["ece"]),
            f"{m['nll'].mean:.3f}",
        ]
        if ood:
            auroc = m.get(f"{ood}:ood_auroc_entropy")
            cells.append(f"{auroc.mean:.3f}" if auroc else "")
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary_markdown(analysis: StudyAnalysis, run_dir: str | os.PathLike[str]) -> str:
    """Write ``summary.md`` from the analysis; return the Markdown."""
    markdown = summary_markdown(analysis)
    atomic_write_text(RunFolder(run_dir).summary_md, markdown)
    return markdown


def write_summary_files(analysis: StudyAnalysis, run_dir: str | os.PathLike[str]) -> str:
    """Write ``summary.csv`` and ``summary.md``; return the Markdown."""
    atomic_write_text(RunFolder(run_dir).summary_csv, summary_csv(analysis))
    return write_summary_markdown(analysis, run_dir)
