"""The one way the CLI makes a rich console."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def make_console(**options: Any) -> Console:
    """A rich ``Console`` for the CLI's output, without emoji codes or automatic highlighting.

    Rich replaces ``:name:`` by an emoji by default, so a dataset spec in an error message,
    ``cifar10:train:...``, printed as ``cifar10🚋...``; user text (paths, labels, specs) is
    printed as it is. ``options`` go to ``Console`` (``stderr``, ``soft_wrap``, ...).
    """
    from rich.console import Console

    return Console(**{"emoji": False, "highlight": False, **options})
