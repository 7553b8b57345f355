"""How library code reports progress: it calls a callback; only the CLI draws.

Long work (a study, a generation run, training, feature extraction, an audit) takes an
optional ``progress: ProgressCallback``. It calls it with a :class:`ProgressEvent` when a
stage starts (``done=0``), as items finish, and once more when the stage ends. The CLI turns
events into rich progress bars on a terminal and into one plain line per finished item
elsewhere (a batch job, ``nohup``, CI); a notebook or a test can collect them in a list.
Library code never imports rich and never prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressCallback", "ProgressEvent", "report"]


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a long-running stage.

    Attributes:
        stage: What runs, short and stable (``"study"``, ``"generate ddpm"``, ``"train"``,
            ``"features"``, ``"audit"``); one bar per stage.
        done: Items finished so far in this stage.
        total: Items in the stage (``None`` when not known in advance).
        item: What just finished or is running now (a unit id, a class name); may be empty.
        unit: What an item is, for rates (``"units"``, ``"images"``, ``"epochs"``).
        finished: The stage is over (its bar can close).
    """

    stage: str
    done: int
    total: int | None = None
    item: str = ""
    unit: str = "items"
    finished: bool = False


ProgressCallback = Callable[[ProgressEvent], None]


def report(
    progress: ProgressCallback | None, stage: str, done: int, total: int | None = None, **fields: object
) -> None:
    """Call ``progress`` with an event, when there is a callback (saves an ``if`` at each site)."""
    if progress is not None:
        progress(ProgressEvent(stage, done, total, **fields))  # type: ignore[arg-type]
