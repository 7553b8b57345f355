"""``synthaug study``: run (or resume) a study declared in a YAML config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from synthaug.cli._app import app
from synthaug.study import load_config, run_study


def print_outcome(result_markdown: str, report_path: Path | None, run_dir: Path, seconds: float) -> None:
    """Print the Markdown summary, then where the results and the report are."""
    console = Console(highlight=False, soft_wrap=True)
    console.print(result_markdown, markup=False)
    console.print(
        f"results: {run_dir / 'results.jsonl'}, {run_dir / 'summary.csv'}, {run_dir / 'summary.md'}", markup=False
    )
    if report_path is not None:
        console.print(f"report: {report_path.resolve()}", markup=False)
    console.print(f"done in {seconds:.0f} s", markup=False)


@app.command("study")
def study_cli(
    config: Annotated[
        Path,
        typer.Argument(help="Study config (YAML): real data, synthetic sources, regimes, methods, seeds, OOD sets."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Run folder; rerunning into it resumes where it stopped.")],
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show the study's progress bar.")] = True,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Render RUN_DIR/report.html at the end.")] = True,
) -> None:
    """Train and evaluate every regime x size x backbone x method x seed of a study, caching
    every model and prediction, then write results.jsonl, summary.csv, summary.md,
    analysis.json and report.html into --out."""
    result = run_study(load_config(config), out, progress=progress, render_report=report)
    print_outcome(result.summary_markdown, result.report_path, result.run_dir, result.seconds)
