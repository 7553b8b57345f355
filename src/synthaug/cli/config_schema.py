"""``synthaug config-schema``: print the JSON schema of a study config, for editors.

The schema is pydantic's (``StudyConfig.model_json_schema()``): every key with its type, its
default and the ``description`` written beside it in :mod:`synthaug.study.config`, so an
editor that reads JSON schemas (VS Code's YAML extension, for one) completes and checks a
study config as it is typed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthaug.cli._app import app


@app.command("config-schema")
def config_schema_cli(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the schema to this file instead of printing it.")
    ] = None,
) -> None:
    """Print the JSON schema of a study config (`synthaug study CONFIG`), every key with its
    type, default and description; point an editor's YAML support at it for completion."""
    import json

    from synthaug.fileio import atomic_write_text
    from synthaug.study.config import StudyConfig

    text = json.dumps(StudyConfig.model_json_schema(), indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    atomic_write_text(out, text)
    typer.echo(f"wrote {out}")
