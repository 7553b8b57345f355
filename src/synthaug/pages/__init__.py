"""One look for every HTML page synthaug writes: a base template and its stylesheet.

The study report (``report.html``), ``audit.html`` and ``inspect.html`` each extend
``base.html.j2`` (``{% extends "base.html.j2" %}``), which inlines ``style.css``, so the three
share fonts, tables (wide ones scroll inside a ``<div class="scroll">``), image strips and
legends, and each stays one self-contained file. The package sits below ``audit``, ``quality``
and ``report`` so that all three can use it without importing one another.

>>> page = environment("synthaug.quality").get_template("inspect.html.j2").render(...)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import jinja2

from synthaug.generate.manifest import generators

__all__ = ["dataset_title", "environment", "stylesheet"]

_HASH = re.compile(r"[0-9a-f]{32,}")


def environment(package: str) -> jinja2.Environment:
    """A Jinja environment that finds ``package``'s ``templates/`` and then the shared base.

    Every value is escaped unless marked safe: class names and file names come from user prompts.
    """
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.PackageLoader(package, "templates"),
                                    jinja2.PackageLoader("synthaug.pages", "templates")]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def stylesheet() -> str:
    """The CSS every page inlines, as it appears there (Jinja drops a template's final newline)."""
    return files("synthaug.pages").joinpath("templates/style.css").read_text(encoding="utf-8").rstrip("\n")


def _short(name: str) -> str:
    """A path's last part, a content hash cut to 12 digits."""
    name = Path(name).name or name
    return f"{name[:12]}…" if _HASH.fullmatch(name) else name


def dataset_title(name: str) -> str:
    """What a page calls a dataset: its folder's name, and the generator that made it.

    A built-in dataset keeps its name (``fashion-mnist:train[50000:50800]``). A folder is named
    by its last part, plus the backend and model of its ``generation.json`` when it has one; a
    content-addressed cache folder (64 hex digits, unreadable and wider than a page) is named
    by its generator alone.
    """
    path = Path(name)
    if not path.is_dir():
        return name
    made_by = ", ".join(backend if model is None else f"{backend} {_short(str(model))}"
                        for backend, model in generators(path))
    if _HASH.fullmatch(path.name):
        return f"{made_by} images" if made_by else f"folder {_short(path.name)}"
    return f"{path.name} ({made_by})" if made_by else path.name
