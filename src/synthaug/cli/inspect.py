"""``synthaug inspect``: what a generator made, per class, against real images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthaug.cli._app import app
from synthaug.cli._progress import progress_reporter


@app.command("inspect")
def inspect_cli(
    generated: Annotated[str, typer.Argument(metavar="GENERATED", help="Generated images: an image folder or "
                                             "built-in dataset name.")],
    reference: Annotated[str, typer.Option("--reference", metavar="REAL", help="Real images of the same classes "
                         "(the real training images, so that copies of them count as memorised).")],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder for summary.json, inspect.html and "
                                      "thumbnails.png.")],
    features: Annotated[str, typer.Option("--features", help="Feature space: reference (a cnn trained on REAL), "
                        "model:DIR (a `synthaug train` model), clip:DIR (a local CLIP), thumbnails (pixels).")]
    = "reference",
    nearest_k: Annotated[int, typer.Option("--nearest-k", min=1, help="k of precision, recall, density, "
                                           "coverage.")] = 5,
    draws: Annotated[int, typer.Option("--draws", min=1, help="Seeded draws of the equal-size generated, "
                                       "real-baseline and reference samples behind every measure.")] = 10,
    thumbnails: Annotated[int, typer.Option("--thumbnails", min=0, help="Nearest and farthest images shown per "
                                            "class.")] = 8,
    epochs: Annotated[int | None, typer.Option(min=1, help="Training epochs of the reference model; default: "
                                                  "the method's own.")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the reference model and the samples.")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, mps; default: CUDA when present.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images instead of stopping.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress.")] = True,
) -> None:
    """Measure GENERATED against REAL per class and overall, in one feature space: precision,
    recall, density and coverage (Naeem et al. 2020), the Fréchet distance and KID in that
    space, each beside the value a held-out real sample of the same size gets; memorisation
    (copies of real images); and the generated images nearest to and farthest from the real ones."""
    # Imported here: the quality package pulls in torch, which `synthaug --help` must not wait for.
    from rich.markup import escape
    from rich.table import Table

    from synthaug.audit.scores import AuditConfig
    from synthaug.cli._console import make_console
    from synthaug.data import load_dataset
    from synthaug.quality import inspect_generated
    from synthaug.quality.baseline import LABELS, MEASURES, format_value

    with progress_reporter(progress) as callback:
        summary = inspect_generated(
            load_dataset(generated, skip_bad=skip_bad),
            load_dataset(reference, skip_bad=skip_bad),
            out,
            features=features,
            nearest_k=nearest_k,
            draws=draws,
            thumbnails_per_class=thumbnails,
            config=AuditConfig(epochs=epochs, seed=seed),
            device=device,
            progress=callback,
        )
    console = make_console()
    console.print(f"feature space: {escape(summary.feature_description)}")
    table = Table(title=f"{escape(summary.title)} against {escape(summary.reference_name)}: generated (real)",
                  caption=f"each measure on equal samples of the size shown, mean of {summary.draws} draws; "
                          "(real): a held-out real sample of that size against the same reference")
    for column in ("class", "sample", *(LABELS[name] for name in MEASURES), "memorised"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for group in [summary.overall, *summary.classes]:
        cells = []
        for name in MEASURES:
            measure = group.measures.get(name)
            cells.append("–" if measure is None else
                         f"{format_value(name, measure.generated.mean)} ({format_value(name, measure.real.mean)})")
        table.add_row(escape(group.name), str(group.sample_size), *cells, f"{100 * group.memorisation.share:.1f} %")
    console.print(table)
    for group in [summary.overall, *summary.classes]:
        for finding in group.findings:
            console.print(f"{escape(group.name)}: {escape(finding)}")
    console.print(f"wrote {escape(str(out))}/summary.json, inspect.html, thumbnails.png")
