"""``synthaug evaluate``: metrics and a reliability diagram for any predictions file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthaug.cli._app import app, require_input


@app.command("evaluate")
def evaluate_cli(
    predictions: Annotated[
        Path,
        typer.Argument(metavar="PREDICTIONS.npz", help="Predictions .npz holding probs (S, N, C) and labels (N,)."),
    ],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder for metrics.json and reliability.png.")],
    ood: Annotated[
        Path | None,
        typer.Option("--ood", metavar="OOD_PREDICTIONS.npz", help="Predictions .npz of the same model on OOD data."),
    ] = None,
    bins: Annotated[int, typer.Option("--bins", min=1, help="Number of calibration bins.")] = 15,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing metrics.json.")] = False,
) -> None:
    """Compute accuracy, NLL, Brier, calibration, uncertainty, selective-prediction (and with
    --ood, OOD-detection) metrics of a predictions file, with 95% bootstrap intervals; write
    OUT/metrics.json and OUT/reliability.png."""
    for path in (predictions, ood):
        require_input(path, "predictions file", "pass a .npz written by `synthaug predict`")
    from rich.table import Table

    from synthaug.cli._console import make_console
    from synthaug.metrics.evaluate import METRICS_FILE, RELIABILITY_FILE, evaluate_prediction_files

    report = evaluate_prediction_files(predictions, out, ood_path=ood, n_bins=bins, overwrite=overwrite)

    intervals = report["confidence_intervals"]
    table = Table(title=f"{predictions.name} ({report['inputs']['predictions']['n_examples']} examples)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% interval", justify="right")
    for name, value in report["metrics"].items():
        interval = intervals.get(name)
        table.add_row(name, f"{value:.4f}", f"[{interval['low']:.4f}, {interval['high']:.4f}]" if interval else "")
    console = make_console()
    console.print(table)
    n_examples = report["inputs"]["predictions"]["n_examples"]
    ece, ece_interval = report["metrics"]["ece"], intervals["ece"]
    if ece > ece_interval["high"]:  # the basic interval of a biased estimate (metrics.bootstrap.basic_interval)
        console.print(
            f"note: ece {ece:.4f} lies above its interval: on {n_examples} examples binned ECE overstates the "
            "calibration error, and the interval (basic bootstrap, Kumar et al. 2019) is for the error itself",
            markup=False,
        )
    console.print(f"wrote {out / METRICS_FILE} and {out / RELIABILITY_FILE}")
