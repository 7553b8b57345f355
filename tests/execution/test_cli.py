"""``--workers`` and ``--ray`` on the command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import synthaug.cli.main  # noqa: F401 - registers every command
from synthaug.cli._app import app
from synthaug.errors import ConfigError


@pytest.mark.slow
def test_generate_on_two_workers(openai_env, tmp_path):
    out = tmp_path / "out"
    arguments = ["generate", "--out", str(out), "--classes", "Bag,Trouser", "--per-class", "3", "--backend", "openai",
                 "--model", "dall-e-2", "--size", "256x256", "--concurrency", "2", "--workers", "2"]  # fmt: skip
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert sorted(row["label"] for row in rows) == ["Bag"] * 3 + ["Trouser"] * 3
    assert openai_env.images_served == 6


def test_workers_and_ray_together_are_refused_in_one_line(tmp_path):
    result = CliRunner().invoke(
        app, ["generate", "--out", str(tmp_path / "o"), "--classes", "a,b", "--per-class", "1", "--workers", "2",
              "--ray", "auto"],  # fmt: skip
    )
    assert isinstance(result.exception, ConfigError)  # main() prints it as one line
    assert str(result.exception) == "give either --workers (this machine) or --ray (a cluster), not both"
