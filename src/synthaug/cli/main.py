"""Entry point of the ``synthaug`` console script."""

from __future__ import annotations

import importlib
import sys

from rich.console import Console
from rich.markup import escape

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
    "report",
    "demo",
    "audit",
    "filter",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"synthaug.cli.{_name}")


def main() -> None:
    """Run the CLI; a :class:`SynthaugError` becomes one line on stderr and exit code 1."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        app()
    except SynthaugError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}")
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted; rerun the same command to resume where it stopped")
        sys.exit(130)


if __name__ == "__main__":
    main()
