"""``synthaug config-schema``: the study config's JSON schema, printed or written."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import synthaug.cli.main  # noqa: F401 - registers every command
from synthaug.cli._app import app


def test_prints_the_study_config_schema_with_descriptions(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["config-schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["title"] == "StudyConfig" and "regimes" in schema["required"]
    regime = schema["$defs"]["Regime"]["properties"]
    assert {"mix", "targeted", "filter"} <= set(regime) and "budget" not in regime
    assert "epistemic" in schema["$defs"]["Targeting"]["properties"]["allocate"]["description"]
    written = CliRunner().invoke(app, ["config-schema", "--out", str(tmp_path / "schema.json")])
    assert written.exit_code == 0, written.output
    assert json.loads((tmp_path / "schema.json").read_text()) == schema
