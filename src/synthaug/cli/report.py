"""``synthaug report``: re-render a study's report from its saved results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthaug.cli._app import app


@app.command("report")
def report_cli(
    run_dir: Annotated[Path, typer.Argument(help="Run folder of a finished study (holds analysis.json).")],
) -> None:
    """Rewrite RUN_DIR/report.html and RUN_DIR/summary.md from the saved results (no model is
    trained or run)."""
    from synthaug.cli._console import make_console
    from synthaug.report.build import build_report, load_run
    from synthaug.study.summary import write_summary_markdown

    markdown = write_summary_markdown(load_run(run_dir).analysis, run_dir)
    path = build_report(run_dir)
    console = make_console(soft_wrap=True)
    console.print(markdown, markup=False)
    console.print(f"report: {path.resolve()}", markup=False)
