"""``synthaug retrieve``: the retrieval baseline, real pool images labelled by CLIP (Geng et al. 2024)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthaug.cli._app import app, require_input
from synthaug.cli.generate import parse_descriptions, read_classes


@app.command("retrieve")
def retrieve_cli(
    pool: Annotated[str, typer.Argument(help="Unlabelled images: an image folder or any dataset name.")],
    clip: Annotated[Path, typer.Option("--clip", help="CLIP model folder (CLIPModel + CLIPProcessor).")],
    per_class: Annotated[int, typer.Option("--per-class", help="Images retrieved per class.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the labelled images.")],
    classes: Annotated[str | None, typer.Option("--classes", help="Comma-separated class labels.")] = None,
    classes_file: Annotated[
        Path | None, typer.Option("--classes-file", help="Labels: one per line, a list, or label -> description.")
    ] = None,
    describe: Annotated[
        list[str] | None, typer.Option("--describe", help="LABEL=DESCRIPTION, repeatable (e.g. 'crane=the bird').")
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="Test/validation data the result must not copy (repeatable)."),
    ] = None,
    prompt: Annotated[str, typer.Option("--prompt", help="Class prompt with {label}.")] = "a photo of a {label}",
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Where pool embeddings are cached [default: synthaug's cache].")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, mps.")] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show progress (bars on a terminal, lines in a log).")
    ] = True,
) -> None:
    """Retrieve the pool images closest to each class prompt in CLIP space as a labelled folder."""
    require_input(clip, "CLIP model folder", "give a folder written by CLIPModel/CLIPProcessor.save_pretrained")
    labels, meanings = read_classes(classes, classes_file)
    meanings = {**meanings, **parse_descriptions(describe or [])}
    from synthaug.cli._console import make_console
    from synthaug.cli._progress import progress_reporter
    from synthaug.data import load_dataset
    from synthaug.retrieve import retrieve_dataset

    pool_data = load_dataset(pool)
    excluded = [load_dataset(spec) for spec in exclude or []]
    with progress_reporter(progress) as reporter:
        summary = retrieve_dataset(
            pool_data, {label: meanings.get(label) for label in labels}, clip, per_class, out,
            exclude=excluded, template=prompt, cache_dir=cache_dir, device=device, progress=reporter,
        )  # fmt: skip
    counts = ", ".join(f"{label}: {n}" for label, n in summary.per_class_counts.items())
    make_console().print(
        f"retrieved {sum(summary.per_class_counts.values())} of {summary.pool_size} pool images into {out} ({counts}); "
        f"{summary.excluded} dropped as copies of --exclude data; {summary.embedded} embedded, the rest cached"
    )
