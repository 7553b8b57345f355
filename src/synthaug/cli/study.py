"""``synthaug study``: run (or resume) a study declared in a YAML config, then draw its report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from synthaug.cli._app import app
from synthaug.cli._execution import RayOption, StudyWorkersOption, study_executor_from_options
from synthaug.errors import ConfigError

if TYPE_CHECKING:
    from synthaug.study.runner import StudyResult


def print_outcome(result: StudyResult, report_path: Path | None) -> None:
    """Print the Markdown summary, then where the results and the report are."""
    from rich.console import Console

    from synthaug.study.run_folder import RunFolder

    console = Console(highlight=False, soft_wrap=True)
    folder = RunFolder(result.run_dir)
    console.print(result.summary_markdown, markup=False)
    console.print(f"results: {folder.results}, {folder.summary_csv}, {folder.summary_md}", markup=False)
    if report_path is not None:
        console.print(f"report: {report_path.resolve()}", markup=False)
    console.print(f"done in {result.seconds:.0f} s", markup=False)


@app.command("study")
def study_cli(
    config: Annotated[
        Path,
        typer.Argument(help="Study config (YAML): real data, synthetic sources, regimes, methods, seeds, OOD sets."),
    ],
    out: Annotated[Path, typer.Option("--out", help="Run folder; rerunning into it resumes where it stopped.")],
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show the study's progress.")] = True,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Render RUN_DIR/report.html at the end.")] = True,
    workers: StudyWorkersOption = None,
    ray: RayOption = None,
    track: Annotated[list[str] | None, typer.Option("--track", help="Log the study to an experiment tracker: "
                     "mlflow (a run per unit under a run for the study; store: the config's tracking.mlflow.uri, "
                     "$MLFLOW_TRACKING_URI, or mlruns/ beside --out).")] = None,
) -> None:
    """Train and evaluate every regime x size x backbone x method x seed of a study, caching
    every model and prediction, then write results.jsonl, summary.csv, summary.md,
    analysis.json and report.html into --out."""
    from synthaug.cli._progress import progress_reporter
    from synthaug.study import load_config, run_study
    from synthaug.tracking.mlflow import study_tracker

    unknown = sorted(set(track or []) - {"mlflow"})
    if unknown:
        raise ConfigError(f"--track {unknown[0]}: unknown tracker; the one supported is mlflow")
    study_config = load_config(config)
    tracker = study_tracker(study_config, out, enabled=bool(track))  # None unless asked for
    with (
        study_executor_from_options(study_config, workers, ray) as executor,
        progress_reporter(progress) as reporter,
    ):
        on_unit_done = None if tracker is None else tracker.log_unit
        result = run_study(study_config, out, progress=reporter, on_unit_done=on_unit_done, executor=executor)
    report_path = _render_report(result.run_dir) if report else None
    if tracker is not None:
        tracker.log_study(result, report_path)
    print_outcome(result, report_path)


def _render_report(run_dir: Path) -> Path:
    from synthaug.report import build_report

    return build_report(run_dir)
