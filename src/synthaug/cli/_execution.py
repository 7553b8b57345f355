"""The ``--workers`` and ``--ray`` options shared by ``synthaug study`` and ``synthaug generate``,
and the executor they ask for (the one place their rules and error text are written)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from synthaug.errors import ConfigError
from synthaug.execution import Executor, make_executor

if TYPE_CHECKING:
    from synthaug.study.config import StudyConfig

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


def executor_from_options(
    workers: int | None, ray: str | None, default_workers: int | None = None, threads_per_worker: int | None = None
) -> Executor:
    """The executor ``--workers``/``--ray`` ask for (``default_workers`` when neither is given).

    Args:
        workers: ``--workers``.
        ray: ``--ray``.
        default_workers: Local processes when neither option is given.
        threads_per_worker: torch threads of each local worker (a study's ``threads``).

    Raises:
        ConfigError: Both options are given, or ``--workers`` is below 1.
    """
    if ray is not None and workers is not None:
        raise ConfigError("give either --workers (this machine) or --ray (a cluster), not both")
    if ray is not None:
        return make_executor(ray_address=ray)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers}: give 1 or more worker processes (1 = everything in this process)")
    from synthaug.execution.local import LocalExecutor

    return LocalExecutor(workers if workers is not None else default_workers, threads_per_worker=threads_per_worker)


def study_executor_from_options(config: StudyConfig, workers: int | None, ray: str | None) -> Executor:
    """The executor of ``synthaug study``: ``--ray`` or ``--workers`` when given, else the
    config's ``execution`` section, else one local worker per core.

    Raises:
        ConfigError: Both ``--workers`` and ``--ray`` are given.
    """
    from synthaug.execution import available_cores
    from synthaug.study.runner import study_executor

    if ray is None and workers is None:
        return study_executor(config, default_workers=available_cores())
    return executor_from_options(workers, ray, threads_per_worker=config.threads)
