"""Where synthaug keeps files it can rebuild: downloaded datasets, feature stores, ..."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SYNTHAUG_CACHE_DIR"


def cache_root() -> Path:
    """The user cache folder (not created here).

    ``$SYNTHAUG_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/synthaug``, else
    ``~/.cache/synthaug`` (the XDG base-directory default).
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "synthaug"
    return Path.home() / ".cache" / "synthaug"


def cache_dir(*parts: str) -> Path:
    """A sub-folder of :func:`cache_root`, created if missing.

    Args:
        *parts: Path components below the cache root, e.g. ``("features", "resnet18")``.
    """
    directory = cache_root().joinpath(*parts)
    directory.mkdir(parents=True, exist_ok=True)
    return directory
