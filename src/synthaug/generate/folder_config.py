"""A generated folder's own record of how it was made: ``DIR/generation.json``.

The engine refuses to mix settings in one folder unless asked to (``extend=True``), because a
dataset whose images came from different prompts or models without saying so would make
every comparison built on it wrong. ``generation.json`` holds the label -> class-folder
mapping (fixed once chosen, so file names never move) and one entry per run that changed
the settings; a resume with the same settings adds nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import synthaug
from synthaug.errors import ConfigError
from synthaug.generate.backends import GeneratorBackend
from synthaug.generate.manifest import CONFIG_NAME, LOCK_NAME, PROMPTS_NAME, TEMP_PREFIX, atomic_write_bytes, utc_now
from synthaug.generate.slug import class_folders

__all__ = ["CONFIG_FORMAT", "check_classes", "check_settings", "read_config", "write_config"]

CONFIG_FORMAT = 1


def check_classes(classes: Sequence[str]) -> list[str]:
    """The labels as a list; one-line errors for a string, an empty list, blanks or duplicates."""
    if isinstance(classes, str):
        raise ConfigError("classes must be a list of labels, not one string; split it first")
    labels = list(classes)
    if not labels:
        raise ConfigError("classes: give at least one class label")
    bad = [label for label in labels if not isinstance(label, str) or not label.strip()]
    if bad:
        raise ConfigError(f"classes: every label must be a non-empty string, got {bad!r}")
    duplicates = sorted(label for label, n in Counter(labels).items() if n > 1)
    if duplicates:
        raise ConfigError(f"classes: {', '.join(map(repr, duplicates))} listed twice")
    return labels


def read_config(root: Path) -> dict[str, Any] | None:
    """The folder's ``generation.json``, or ``None`` for a new or empty folder.

    Raises:
        ConfigError: The folder holds other files but no ``generation.json``.
    """
    path = root / CONFIG_NAME
    if path.is_file():
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigError(f"{path}: unreadable ({error}); restore it or choose a new --out folder") from error
        if not isinstance(config, dict) or not config.get("runs") or not isinstance(config.get("folders"), dict):
            raise ConfigError(f"{path}: not a synthaug generation record; restore it or choose a new --out folder")
        return config
    if root.exists():
        if not root.is_dir():
            raise ConfigError(f"--out {root} is a file; give a folder")
        # The lock, temporary files and the prompt list written before the first image.
        foreign = [p.name for p in root.iterdir()
                   if p.name not in (LOCK_NAME, PROMPTS_NAME) and not p.name.startswith(TEMP_PREFIX)]
        if foreign:
            raise ConfigError(
                f"{root} already holds files that synthaug generate did not write "
                f"({', '.join(sorted(foreign)[:3])}...); choose an empty or new --out folder"
            )
    return None


def check_settings(
    root: Path,
    config: dict[str, Any] | None,
    settings: dict[str, Any],
    classes: list[str],
    per_class: int,
    extend: bool,
) -> dict[str, str]:
    """Refuse to mix configurations unless ``extend``; return the label -> folder mapping."""
    if config is None:
        return class_folders(classes)
    last = config["runs"][-1]
    changes = [
        f"{key}: {_short(last['settings'].get(key))} -> {_short(value)}"
        for key, value in settings.items()
        if last["settings"].get(key) != value
    ]
    if last["classes"] != classes:
        changes.append(f"classes: {_short(last['classes'])} -> {_short(classes)}")
    if last["per_class"] != per_class:
        changes.append(f"per_class: {last['per_class']} -> {per_class}")
    if changes and not extend:
        raise ConfigError(
            f"{root} was generated with other settings ({'; '.join(changes)}); rerun with the "
            "same settings to resume, choose a new --out folder, or pass --extend to add images "
            "with the new settings"
        )
    return class_folders(classes, existing=config["folders"])


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def write_config(
    root: Path,
    config: dict[str, Any] | None,
    settings: dict[str, Any],
    classes: list[str],
    per_class: int,
    folders: dict[str, str],
    generator: GeneratorBackend,
) -> None:
    """Record this run in ``generation.json`` (a resume with the same settings adds nothing)."""
    run = {"settings": settings, "classes": classes, "per_class": per_class}
    if config is not None:
        last = config["runs"][-1]
        if {key: last[key] for key in run} == run:
            return
    config = config or {"format": CONFIG_FORMAT, "folders": {}, "runs": []}
    config["folders"] = {**config["folders"], **folders}
    config["runs"].append(
        {
            **run,
            "generator": generator.describe(),
            "created": utc_now(),
            "synthaug_version": synthaug.__version__,
        }
    )
    atomic_write_bytes(root / CONFIG_NAME, (json.dumps(config, indent=2, ensure_ascii=False) + "\n").encode())


