"""``synthaug demo``: the whole study on Fashion-MNIST with the shipped generator, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthaug.cli._app import app
from synthaug.cli.study import print_outcome

# Kept here rather than imported from synthaug.study.demo, so that `synthaug --help` does not
# import the study package (see test_default_run_folder_matches_the_library).
DEFAULT_RUN_DIR = "runs/demo"


@app.command("demo")
def demo_cli(
    out: Annotated[Path, typer.Option("--out", help="Run folder; rerunning into it resumes.")] = Path(DEFAULT_RUN_DIR),
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show the study's progress.")] = True,
) -> None:
    """Generate Fashion-MNIST images with the shipped ddpm model, train cnn classifiers
    (deterministic, temperature, ensemble, bnn) on real, synthetic and mixed data, with and
    without classical augmentation (flip-crop, MixUp), over 3 seeds, and write the report
    (about 3.5 minutes on 2 CPU cores)."""
    from synthaug.cli._progress import progress_reporter
    from synthaug.report import build_report
    from synthaug.study.demo import run_demo

    with progress_reporter(progress) as reporter:
        result = run_demo(out, progress=reporter)
    print_outcome(result, build_report(result.run_dir))
