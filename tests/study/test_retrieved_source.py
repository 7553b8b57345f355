"""A ``retrieve:`` source (issue 22): real images retrieved from an unlabelled pool by CLIP,
deduplicated against the study's test and validation sets, drawn by regimes like a synthetic
source and named "retrieved" in the exchange-rate table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from synthaug.data import load_dataset
from synthaug.study import load_config, run_study
from synthaug.study.plan import plan_study

from helpers.tiny_hf_models import save_tiny_clip
from helpers.tiny_study import bar_images, write_folder

CLASSES = ["cat", "dog", "crane"]  # words the tiny CLIP's character tokenizer tells apart
CLIP_SEED = 9  # a random tiny CLIP that sends some pool images to each class


def _study(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "data"
    write_folder(root / "pool", *bar_images(14, seed=1, noise=25.0), CLASSES)
    test_images, test_labels = bar_images(12, seed=2, noise=25.0)
    write_folder(root / "test", test_images, test_labels, CLASSES)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(60, 8, 8, 3), dtype=np.uint8)
    flat = (rng.integers(0, 256, size=(60, 1, 1, 3)) * np.ones((1, 8, 8, 1))).astype(np.uint8)
    # Copies of every test image join the pool: retrieval must never hand one back.
    write_folder(root / "with-test-copies", np.concatenate([np.stack([np.stack([image] * 3, -1) for image in
                 test_images]), noise, flat]), np.zeros(36 + 120, np.int64), ["?"])  # fmt: skip
    clip = save_tiny_clip(tmp_path / "clip", seed=CLIP_SEED)
    data = {
        "title": "Retrieved or generated?",
        "real": {"train": str(root / "pool"), "test": str(root / "test"), "val_fraction": 0.25},
        "synthetic": [{"name": "laion-like", "retrieve": {"pool": str(root / "with-test-copies"),
                                                          "by": f"clip:{clip}", "per_class": 3}}],  # fmt: skip
        "regimes": [{"name": "real", "data": "real", "sizes": [2, 3]},
                    {"name": "retrieved", "data": "synthetic", "sizes": [2, 3]}],  # fmt: skip
        "backbones": [{"name": "cnn", "params": {"image_size": 8, "channels": [4], "hidden": 8}}],
        "methods": ["deterministic"],
        "method_params": {"epochs": 2, "batch_size": 8},
        "seeds": [0, 1],
        "inspect": "thumbnails",  # "what the generator made" reads a retrieved folder too
        "bootstrap_resamples": 100,
    }
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(data))
    return config, tmp_path / "run"


@pytest.mark.slow
def test_retrieved_source_is_deduplicated_drawn_by_its_regime_and_named_in_the_exchange_rates(tmp_path: Path) -> None:
    config_path, run_dir = _study(tmp_path)
    config = load_config(config_path)
    assert plan_study(config, run_dir).sources[0].to_generate == 9  # nothing retrieved yet

    result = run_study(config, run_dir)

    folder = next((run_dir / "cache" / "generated").glob("*/retrieval.json")).parent
    retrieved = load_dataset(str(folder))
    assert retrieved.class_counts() == dict.fromkeys(CLASSES, 3)
    settings = json.loads((folder / "retrieval.json").read_text())
    assert settings["summary"]["excluded"] > 0  # copies of test images were among the nearest
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    assert all(row["pool_index"] >= 36 for row in rows)  # no copy of a test image came back
    assert all(row["source"] == "retrieved" and len(row["pool_sha256"]) == 64 for row in rows)

    kinds = {row.source_kind for row in result.analysis.exchange_rates}
    assert kinds == {"retrieved"}
    again = plan_study(config, run_dir).sources[0]
    assert (again.kind, again.on_disk, again.to_generate) == ("retrieve", 9, 0)

    from synthaug.report import build_report

    html = build_report(run_dir).read_text()
    assert "<td class=\"left\">retrieved</td>" in html
