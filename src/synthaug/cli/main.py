"""Entry point of the ``synthaug`` console script.

Start-up: every command module imports only typer and the standard library at module level
and imports the library (torch, matplotlib, scikit-learn, ...) inside its command function,
so ``synthaug --help``, ``synthaug COMMAND --help`` and a one-line error for a missing input
answer at once. ``benchmarks/startup.py`` measures it; ``tests/cli/test_startup.py`` checks
that no heavy module is imported before a command runs.
"""

from __future__ import annotations

import importlib
import sys

from synthaug.cli._app import app
from synthaug.errors import SynthaugError

# One module per command; importing a module registers its command on ``app``.
COMMAND_MODULES = [
    "datasets",
    "evaluate",
    "train",
    "predict",
    "generate",
    "train_generator",
    "study",
    "config_schema",
    "report",
    "demo",
    "audit",
    "filter",
    "inspect",
    "retrieve",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"synthaug.cli.{_name}")


def main() -> None:
    """Run the CLI; a :class:`SynthaugError` becomes its message on stderr (one line, or one
    per problem for a config with several) and exit code 1, without a traceback."""
    try:
        app()
    except SynthaugError as error:
        _print_error(f"[bold red]error:[/] {_escape(str(error))}")
        sys.exit(1)
    except KeyboardInterrupt:
        _print_error("interrupted; rerun the same command to resume where it stopped")
        sys.exit(130)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _print_error(markup: str) -> None:
    from synthaug.cli._console import make_console

    make_console(stderr=True, soft_wrap=True).print(markup)


if __name__ == "__main__":
    main()
