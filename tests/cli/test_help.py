"""Every command's --help shows its option texts whole (square brackets included)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from synthaug.cli.main import app


def _commands() -> dict[str, Any]:
    """The click commands typer builds, by name."""
    return dict(typer.main.get_command(app).commands)


def _flat(text: str) -> str:
    """The help text without the table's box characters, backticks and line breaks."""
    return " ".join(re.sub(r"[│╭╮╰╯─`]", " ", text).split())


@pytest.mark.parametrize("name", sorted(_commands()))
def test_bracketed_help_texts_reach_the_screen(name: str) -> None:
    command = _commands()[name]
    bracketed = [
        segment
        for param in command.params
        for segment in re.findall(r"\S*\[[^\]]*\]", getattr(param, "help", None) or "")
    ]
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    shown = _flat(result.output)
    for segment in bracketed:
        assert _flat(segment) in shown, f"{name} --help lost {segment!r}"


def test_the_bracketed_texts_the_check_relies_on_exist() -> None:
    """The commands above do carry bracketed help (a default, an extra), so the check bites."""
    helps = {name: " ".join(getattr(p, "help", None) or "" for p in command.params)
             for name, command in _commands().items()}  # fmt: skip
    assert "[default: 15" in helps["train"]
    assert "synthaug[ray]" in helps["study"]


def test_version() -> None:
    import synthaug

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"synthaug {synthaug.__version__}\n"
