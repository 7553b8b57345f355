"""The CLIP scorer and `synthaug filter --clip`, on a tiny random CLIP built and saved here."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from synthaug.data import ImageDataset, load_dataset
from synthaug.errors import ConfigError

transformers = pytest.importorskip("transformers")

from synthaug.audit.clip import CLASS_TEMPLATE, ClipScorer  # noqa: E402
from synthaug.audit.filter import filter_dataset  # noqa: E402

from helpers.tiny_hf_models import save_tiny_clip  # noqa: E402


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def test_scores_match_the_models_own_forward_pass(tiny_clip: Path,
                                                  make_pattern_dataset: Callable[..., ImageDataset]) -> None:
    data = make_pattern_dataset(4, seed=0)
    scorer = ClipScorer(tiny_clip, device="cpu", batch_size=5)
    scores = scorer.score(data)
    # The reference: one CLIPModel forward pass over all images and the class prompts.
    processor = transformers.CLIPProcessor.from_pretrained(tiny_clip, local_files_only=True)
    model = transformers.CLIPModel.from_pretrained(tiny_clip, local_files_only=True).eval()
    images = [data[i][0].convert("RGB") for i in range(len(data))]
    texts = [CLASS_TEMPLATE.format(label=name) for name in data.classes]
    with torch.no_grad():
        output = model(**processor(text=texts, images=images, return_tensors="pt", padding=True))
    expected = output.logits_per_image.softmax(dim=1).double().numpy()
    np.testing.assert_allclose(scores.class_probability, expected, atol=1e-5)
    np.testing.assert_array_equal(scores.agreement, expected.argmax(axis=1) == data.targets)
    # Pattern images have no prompt: each is scored against its class prompt.
    cosine = (output.image_embeds @ output.text_embeds.T).double().numpy()[np.arange(len(data)), data.targets]
    np.testing.assert_allclose(scores.prompt_score, 100 * np.clip(cosine, 0, None), atol=1e-4)
    assert scores.prompts[0] == CLASS_TEMPLATE.format(label=data.classes[data.targets[0]])
    # Batching changes nothing; embeddings have unit length.
    embeddings = scorer.image_embeddings(data)
    np.testing.assert_allclose(ClipScorer(tiny_clip, device="cpu", batch_size=64).image_embeddings(data),
                               embeddings, atol=1e-5)
    assert embeddings.shape == (12, 8)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_missing_model_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such folder"):
        ClipScorer(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="cannot load a CLIPModel"):
        ClipScorer(tmp_path / "empty")


def test_filter_by_clip_alone_drops_what_clip_marks(tiny_clip: Path, tiny_image_folder: Path,
                                                    tmp_path: Path) -> None:
    from synthaug.cli import filter as _filter_command  # noqa: F401  (registers `filter`)
    from synthaug.cli._app import app

    data = load_dataset(str(tiny_image_folder))
    scores = ClipScorer(tiny_clip, device="cpu").score(data)
    threshold = float(np.median(scores.prompt_score))
    out = tmp_path / "clean"
    result = CliRunner().invoke(app, ["filter", str(tiny_image_folder), "--out", str(out), "--clip", str(tiny_clip),
                                      "--min-clip-score", str(threshold), "--clip-class-agreement",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    drop = (scores.prompt_score < threshold) | ~scores.agreement
    kept = load_dataset(str(out))
    assert len(kept) == int((~drop).sum()) and 0 < len(kept) < len(data)
    dropped = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    assert sorted(row["file_name"] for row in dropped) == sorted(
        str(data.records[i]["file_name"]) for i in np.flatnonzero(drop))
    assert all(row["clip_score"] >= threshold and row["clip_agreement"] for row in kept.records)
    settings = json.loads((out / "filter.json").read_text())
    assert settings["audit"] is None and settings["settings"]["min_clip_score"] == threshold
    assert set(settings["dropped_by_reason"]) <= {"clip score", "clip class"}
    with pytest.raises(ConfigError, match="need CLIP scores"):
        filter_dataset(data, None, tmp_path / "other", min_clip_score=10.0)
    with pytest.raises(ConfigError, match="need --audit"):
        filter_dataset(data, None, tmp_path / "other", drop_top=5, clip=scores, min_clip_score=10.0)


def test_study_filter_takes_clip_rules(tmp_path: Path) -> None:
    from synthaug.study.config import RegimeFilter

    rule = RegimeFilter(clip={"model": str(tmp_path), "min_score": 25, "class_agreement": True})
    assert rule.describe() == "filtered: CLIP score < 25 + CLIP class disagrees"
    with pytest.raises(ValueError, match="say what CLIP drops"):
        RegimeFilter(clip={"model": str(tmp_path)})


def test_inspect_in_clip_space(tiny_clip: Path, make_pattern_dataset: Callable[..., ImageDataset],
                               tmp_path: Path) -> None:
    from synthaug.quality import inspect_generated

    summary = inspect_generated(make_pattern_dataset(8, seed=1), make_pattern_dataset(10, seed=0), tmp_path,
                                features=f"clip:{tiny_clip}", device="cpu", nearest_k=3)
    assert summary.feature_space == f"clip:{tiny_clip}" and "CLIP image embeddings" in summary.feature_description
    assert summary.overall.prdc is not None and summary.overall.generated == 24
