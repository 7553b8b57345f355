"""``synthaug train --weights-from-audit``: audit weights on the sets the audit covers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import synthaug.cli.main  # noqa: F401  (registers every command)
from synthaug.audit import AuditConfig, audit_dataset, audit_weights
from synthaug.cli._app import app
from synthaug.cli.train import train
from synthaug.data import load_dataset
from synthaug.errors import DataError
from synthaug.methods import load_method

runner = CliRunner()
TINY_CNN = ["--backbone-option", "channels=[8,16]", "--backbone-option", "hidden=32", "--backbone-option",
            "image_size=16"]
FAST_AUDIT = AuditConfig(folds=3, method="deterministic", method_options={"batch_size": 32}, epochs=3,
                         report_per_class=0)


def _other_folder(root: Path, classes: list[str]) -> Path:
    """Pattern images the audit never saw, in the same class folders."""
    rng = np.random.default_rng(5)
    for name in classes:
        (root / name).mkdir(parents=True)
        for index in range(5):
            Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(root / name / f"{index}.png")
    return root


@pytest.mark.slow
def test_audit_weights_reach_the_covered_set_only(tiny_image_folder: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit"
    audit_dataset(load_dataset(tiny_image_folder), audit, config=FAST_AUDIT)
    other = _other_folder(tmp_path / "other", load_dataset(tiny_image_folder).classes)
    model = tmp_path / "model"
    result = runner.invoke(app, ["train", "--train", str(tiny_image_folder), "--train", str(other),
                                 "--weight", "1", "--weight", "0.5", "--weights-from-audit", str(audit),
                                 "--epochs", "2", *TINY_CNN, "--out", str(model)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    provenance = json.loads((model / "training.json").read_text())
    assert [part["audit_weighted"] for part in provenance["train"]] == [True, False]
    assert provenance["weights_from_audit"] == str(audit.resolve()) and provenance["weights"] == [1.0, 0.5]
    # The audit-weighted set's fingerprint records its weights; the other set is unchanged.
    audited = load_dataset(tiny_image_folder)
    weighted = audited.with_sample_weights(audit_weights(audited, audit))
    assert provenance["train"][0]["fingerprint"] == weighted.fingerprint() != audited.fingerprint()
    assert provenance["train"][1]["fingerprint"] == load_dataset(other).fingerprint()

    # The weights change the fit (same data, seed and settings otherwise).
    options = {"hyperparameters": {"epochs": 2, "seed": 0}, "backbone_options": {"channels": [8, 16], "hidden": 32,
                                                                                  "image_size": 16}}
    plain = train([str(tiny_image_folder)], tmp_path / "plain", **options)
    audit_weighted = train([str(tiny_image_folder)], tmp_path / "weighted", weights_from_audit=audit, **options)
    assert not np.allclose(plain.predict_proba(audited), audit_weighted.predict_proba(audited))
    assert load_method(tmp_path / "weighted").classes_ == audited.classes


@pytest.mark.slow
def test_an_audit_covering_no_training_set_is_refused(tiny_image_folder: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit"
    audit_dataset(load_dataset(tiny_image_folder), audit, config=FAST_AUDIT)
    other = _other_folder(tmp_path / "other", load_dataset(tiny_image_folder).classes)
    with pytest.raises(DataError, match=r"audit/scores\.jsonl covers none of the --train sets .*synthaug audit"):
        runner.invoke(app, ["train", "--train", str(other), "--weights-from-audit", str(audit),
                            "--out", str(tmp_path / "model")], catch_exceptions=False)
    assert not (tmp_path / "model").exists()
