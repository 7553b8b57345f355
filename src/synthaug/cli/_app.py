"""The typer application every command module registers on."""

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="synthaug",
    help="Generate labelled image datasets with text-to-image models, train classifiers "
    "with uncertainty methods on real, synthetic and mixed data, and measure what "
    "synthetic data is worth.",
    no_args_is_help=True,
    add_completion=False,
    # Our own errors become one line (see main.py); anything else is a bug and keeps a
    # plain traceback rather than a multi-screen rich one.
    pretty_exceptions_enable=False,
    # Help texts are Markdown: in typer's default "rich" mode every `[...]` is a style tag, so
    # "[default: 15, ...]" and "synthaug[ray]" vanished from --help, and docstrings kept their
    # source line breaks.
    rich_markup_mode="markdown",
)


def _print_version(value: bool) -> None:
    if value:
        import synthaug

        typer.echo(f"synthaug {synthaug.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    # A callback keeps typer in multi-command mode even while only one command is
    # registered; without it `synthaug datasets` would become plain `synthaug`.
    pass


def require_input(path: Path | None, what: str, hint: str) -> None:
    """Fail with one line when an input file or folder is missing, before any slow import.

    The library checks its inputs too, but only after importing torch (seconds); a typo in a
    path should answer at once.

    Raises:
        DataError: ``path`` does not exist (``None`` is an option not given: nothing to check).
    """
    from synthaug.errors import DataError

    if path is not None and not Path(path).exists():
        raise DataError(f"{path}: no such {what}; {hint}")
