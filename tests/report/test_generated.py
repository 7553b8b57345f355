"""The report's "What the generator made" and "Uncertainty-targeted generation" sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.tiny_targeted import tiny_targeted_study


@pytest.mark.slow
def test_the_report_shows_the_inspection_and_the_targeted_rounds(tmp_path_factory: pytest.TempPathFactory) -> None:
    from synthaug.report import build_report
    from synthaug.report.generated import generator_quality, targeted_generation

    _, result = tiny_targeted_study(tmp_path_factory.getbasetemp())
    (source,) = generator_quality(result.run_dir)
    assert source["source"] == "tiny-ddpm" and "thumbnails" in source["features"]
    assert [row["name"] for row in source["rows"]][0] == "all classes" and source["grid"]
    # Every measure beside the value a held-out real sample of the same size gets.
    assert source["columns"] == ["precision", "recall", "density", "coverage", "FD", "KID"]
    assert all(cell["real"] for row in source["rows"] for cell in row["cells"] if cell["generated"] != "–")
    assert source["rows"][0]["cells"][4]["real"]  # FD of all classes has its baseline (the tiny pool is too
    # small for PRDC at k = 5 once halved into baseline and reference samples)
    # The inspection page is named by the source, in the report's look.
    from synthaug.pages import stylesheet
    from synthaug.study.analysis import read_analysis

    page = Path(source["page"]).read_text()
    assert "<h1>tiny-ddpm</h1>" in page and stylesheet() in page
    targeted = targeted_generation(read_analysis(result.run_dir))
    assert targeted is not None and targeted["accuracy"] and targeted["allocation"]
    (row,) = targeted["comparisons"]
    assert row["regime"] == "targeted" and row["baseline"] == "uniform" and "2 seeds" in row["difference"]
    # An analysis.json written before the targeted records were in it: read_analysis adds them.
    import json

    path = result.run_dir / "analysis.json"
    saved = json.loads(path.read_text())
    assert saved["targeted_curves"] and saved["targeted_comparisons"]
    legacy = {key: value for key, value in saved.items() if not key.startswith("targeted_")}
    path.write_text(json.dumps(legacy))
    reread = read_analysis(result.run_dir)
    assert [curve.to_dict() for curve in reread.targeted_curves] == saved["targeted_curves"]
    assert [item.to_dict() for item in reread.targeted_comparisons] == saved["targeted_comparisons"]
    html = build_report(result.run_dir).read_text()
    assert "What the generator made" in html and "Uncertainty-targeted generation" in html
    assert "a held-out real" in html and '<span class="real">real ' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)</script>" not in html
