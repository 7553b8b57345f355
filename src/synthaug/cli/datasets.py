"""``synthaug datasets``: list the built-in datasets, or check an image folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthaug.cli._app import app


@app.command("datasets")
def datasets_cli(
    check: Annotated[
        Path | None,
        typer.Option(
            "--check",
            help="Instead of listing, validate this image folder: print images per class and every "
            "bad file or metadata row; exit code 1 if any was found.",
        ),
    ] = None,
) -> None:
    """List the built-in datasets, their sizes and where each was found."""
    from rich.markup import escape
    from rich.table import Table

    from synthaug.cli._console import make_console
    from synthaug.data import check_image_folder, describe_builtin_datasets

    console = make_console(soft_wrap=True)
    if check is None:
        table = Table(title="Built-in datasets")
        table.add_column("name")
        table.add_column("images", justify="right")
        table.add_column("where")
        for status in describe_builtin_datasets():
            table.add_row(status.name, f"{status.size:,}", escape(status.location))
        console.print(table)
        return

    result = check_image_folder(check)
    total = sum(result.class_counts.values())
    console.print(escape(f"{check}: {total:,} good images in {len(result.class_counts)} classes"))
    table = Table()
    table.add_column("class")
    table.add_column("images", justify="right")
    for name, count in result.class_counts.items():
        table.add_row(escape(name), f"{count:,}")
    console.print(table)
    if result.bad:
        console.print(f"[bold red]{len(result.bad)} bad item(s)[/] (nothing was changed):")
        for where, reason in result.bad:
            console.print(f"  {escape(where)}: {escape(reason)}")
        raise typer.Exit(1)
    console.print("no bad items")
