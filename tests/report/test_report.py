"""The report: one self-contained HTML file, user text escaped, re-rendered from saved results."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import synthaug.cli.main  # noqa: F401 - registers every command on the app
from synthaug.cli._app import app

HOSTILE = "<script>alert(1)</script>"


def report_html(tiny_study: dict[str, Any]) -> str:
    return (Path(tiny_study["run_dir"]) / "report.html").read_text(encoding="utf-8")


def test_report_is_one_self_contained_file(tiny_study: dict[str, Any]) -> None:
    html = report_html(tiny_study)
    # Nothing is fetched: no remote or local file references, no scripts, no stylesheets.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", html, re.IGNORECASE)
    assert not re.search(r"<(script|link|iframe|object|embed)\b", html, re.IGNORECASE)
    assert "@import" not in html and "url(" not in html
    sources = re.findall(r"""<img[^>]*\ssrc="([^"]*)\"""", html)
    assert len(sources) >= 8  # figures and sample thumbnails
    assert all(source.startswith("data:image/png;base64,") for source in sources)


def test_report_escapes_user_text(tiny_study: dict[str, Any]) -> None:
    html = report_html(tiny_study)
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # class name, prompts, config
    assert "Are &lt;b&gt;bars&lt;/b&gt; worth drawing?" in html


def test_report_answers_first_and_shows_every_part(tiny_study: dict[str, Any]) -> None:
    html = report_html(tiny_study)
    answer = html.index('class="answer"')
    assert answer < html.index('id="results"')
    assert "hand-drawn images per class are worth" in html[answer : answer + 400]
    for anchor in (
        "original",
        "results",
        "curves",
        "mixing",
        "calibration",
        "uncertainty",
        "confusion",
        "samples",
        "provenance",
    ):
        assert f'id="{anchor}"' in html
    assert "He et al. (2023)" in html
    assert "a photo of a bar-top" in html  # prompts from metadata.jsonl under the samples


def test_report_command_rerenders_without_training(tiny_study: dict[str, Any]) -> None:
    run_dir = Path(tiny_study["run_dir"])
    models = sorted((run_dir / "cache" / "models").iterdir())
    log = (run_dir / "results.jsonl").read_bytes()
    (run_dir / "report.html").unlink()
    (run_dir / "summary.md").unlink()
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert (run_dir / "report.html").is_file() and (run_dir / "summary.md").is_file()
    assert f"report: {(run_dir / 'report.html').resolve()}" in result.output
    assert "| regime | per class |" in result.output  # the Markdown summary
    assert sorted((run_dir / "cache" / "models").iterdir()) == models
    assert (run_dir / "results.jsonl").read_bytes() == log


@pytest.mark.slow
def test_report_of_a_folder_without_a_study_is_one_line(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "synthaug.cli", "report", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    # Only the error line is checked: third-party import warnings may precede it.
    assert completed.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path}: no analysis.json here")


def test_an_analysis_written_before_treatments_existed_still_renders(
    tiny_study: dict[str, Any], tmp_path: Path
) -> None:
    import json

    from synthaug.report import build_report

    analysis = json.loads((Path(tiny_study["run_dir"]) / "analysis.json").read_text(encoding="utf-8"))
    for group in analysis["groups"]:
        del group["treatment"]  # groups had no treatment before filtered and weighted regimes
    (tmp_path / "analysis.json").write_text(json.dumps(analysis), encoding="utf-8")
    html = build_report(tmp_path).read_text(encoding="utf-8")
    assert "hand-drawn images per class are worth" in html
    assert "3 real + 10 hand-drawn" in html and "8 hand-drawn" in html  # the results table
