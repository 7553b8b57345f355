"""``synthaug study``: run (or resume) a study declared in a YAML config, then draw its report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from synthaug.cli._app import app
from synthaug.cli._execution import RayOption, StudyWorkersOption, study_executor_from_options
from synthaug.errors import ConfigError

if TYPE_CHECKING:
    from synthaug.study.plan import StudyPlan
    from synthaug.study.runner import StudyResult


def print_outcome(result: StudyResult, report_path: Path | None) -> None:
    """Print the Markdown summary, then where the results and the report are."""
    from synthaug.cli._console import make_console
    from synthaug.study.run_folder import RunFolder

    console = make_console(soft_wrap=True)
    folder = RunFolder(result.run_dir)
    console.print(result.summary_markdown, markup=False)
    console.print(f"results: {folder.results}, {folder.summary_csv}, {folder.summary_md}", markup=False)
    if report_path is not None:
        console.print(f"report: {report_path.resolve()}", markup=False)
    console.print(f"done in {result.seconds:.0f} s", markup=False)


def _minutes(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds / 60:.1f} min"


def plan_line(plan: StudyPlan) -> str:
    """One line: images to generate, estimated cost against the caps, units left, time."""
    to_generate = sum(source.to_generate for source in plan.sources)
    on_disk = sum(source.on_disk for source in plan.sources)
    caps = [f"{source.source} ${source.estimated_cost_usd:.2f} of max ${source.max_cost:.2f}"
            for source in plan.sources if source.max_cost is not None]  # fmt: skip
    calls = sum(source.text_model_calls for source in plan.sources)
    return (
        f"plan: {to_generate} image(s) to generate ({on_disk} on disk)"
        + (f" and at most {calls} text-model call(s)" if calls else "") + ", estimated cost "
        f"${plan.estimated_cost_usd:.2f}" + (f" ({'; '.join(caps)})" if caps else "")
        + f"; {plan.units_total - plan.units_finished} of {plan.units_total} units to run; "
        f"estimated time {_minutes(plan.estimated_seconds)}"
    )


def print_plan(plan: StudyPlan) -> None:
    """The cost line first, then the units of each regime and the requests of each source."""
    from rich.table import Table

    from synthaug.cli._console import make_console

    console = make_console(soft_wrap=True)
    console.print(plan_line(plan), markup=False)
    units = Table(title=f"Units ({plan.run_dir})")
    for column in ("regime", "sizes", "units", "done"):
        units.add_column(column, justify="left" if column == "regime" else "right")
    for regime in plan.regimes:
        units.add_row(regime.regime, ", ".join(map(str, regime.sizes)), str(regime.units), str(regime.finished))
    console.print(units)
    if plan.sources:
        sources = Table(title=f"Synthetic sources ({len(plan.classes)} classes)")
        for column in ("source", "kind", "backend", "requested", "on disk", "to generate", "text calls", "cost $",
                       "max_cost $", "time"):  # fmt: skip
            sources.add_column(column, justify="left" if column in ("source", "kind", "backend") else "right")
        for source in plan.sources:
            sources.add_row(
                source.source, source.kind, source.backend or "-", str(source.requested), str(source.on_disk),
                str(source.to_generate), str(source.text_model_calls), f"{source.estimated_cost_usd:.2f}",
                "-" if source.max_cost is None else f"{source.max_cost:.2f}", _minutes(source.estimated_seconds),
            )  # fmt: skip
        console.print(sources)
    per_unit = "unknown until a unit has run" if plan.seconds_per_unit is None else f"{plan.seconds_per_unit:.1f} s"
    console.print(f"time per unit: {per_unit}", markup=False)


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
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (units, images to generate, "
                       "estimated cost against each max_cost, time); run nothing.")] = False,
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
    if dry_run:
        from synthaug.study.plan import plan_study

        print_plan(plan_study(study_config, out))
        return
    if _has_paid_source(study_config):  # its cost comes first, before anything is requested
        from synthaug.cli._console import make_console
        from synthaug.study.plan import plan_study

        make_console(soft_wrap=True).print(plan_line(plan_study(study_config, out)), markup=False)
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


def _has_paid_source(study_config: Any) -> bool:
    from synthaug.study.plan import is_paid_backend

    return any(source.generate is not None and is_paid_backend(source.generate.backend)
               for source in study_config.synthetic)  # fmt: skip


def _render_report(run_dir: Path) -> Path:
    from synthaug.report import build_report

    return build_report(run_dir)
