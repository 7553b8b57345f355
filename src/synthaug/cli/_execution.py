"""The ``--workers`` and ``--ray`` options shared by ``synthaug study`` and ``synthaug generate``."""

from __future__ import annotations

from typing import Annotated

import typer

from synthaug.errors import ConfigError
from synthaug.execution import Executor, make_executor

StudyWorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Local worker processes, each training one unit at a time (default: one per core; 1 = "
        "everything in this process).",
    ),
]
GenerateWorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Local worker processes, each generating one shard at a time (default: 1 = this process).",
    ),
]
RayOption = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Run on a Ray cluster: 'auto' = the cluster of `ray start` on this machine, 'local' = a "
        "private one here, or HOST:PORT / ray://HOST:10001 (needs synthaug[ray]).",
    ),
]


def executor_from_options(workers: int | None, ray: str | None, default_workers: int | None = None) -> Executor:
    """The executor ``--workers``/``--ray`` ask for (``default_workers`` when neither is given).

    Raises:
        ConfigError: Both options are given, or ``--workers`` is below 1.
    """
    if ray is not None and workers is not None:
        raise ConfigError("give either --workers (this machine) or --ray (a cluster), not both")
    if ray is not None:
        return make_executor(ray_address=ray)
    return make_executor(workers=workers if workers is not None else default_workers)
