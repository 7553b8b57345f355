"""``synthaug demo``: the whole study on Fashion-MNIST with the shipped generator, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthaug.cli._app import app
from synthaug.cli.study import print_outcome
from synthaug.study.demo import DEFAULT_RUN_DIR, run_demo


@app.command("demo")
def demo_cli(
    out: Annotated[Path, typer.Option("--out", help="Run folder; rerunning into it resumes.")] = Path(DEFAULT_RUN_DIR),
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show the study's progress bar.")] = True,
) -> None:
    """Generate Fashion-MNIST images with the shipped ddpm model, train cnn classifiers
    (deterministic, temperature, mc-dropout, ensemble, bnn) on real, synthetic and mixed data
    over 3 seeds, and write the report (about 10 minutes on 2 CPU cores)."""
    result = run_demo(out, progress=progress)
    print_outcome(result.summary_markdown, result.report_path, result.run_dir, result.seconds)
