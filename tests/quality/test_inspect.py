"""inspect_generated and `synthaug inspect`: summary.json, the page and the thumbnails."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from synthaug.audit import AuditConfig
from synthaug.cli._app import app
from synthaug.cli import inspect as _inspect_command  # noqa: F401  (registers `inspect`)
from synthaug.data import ImageDataset
from synthaug.errors import ConfigError, DataError
from synthaug.quality import InspectSummary, inspect_generated, read_summary


def _degraded(dataset: ImageDataset, label: int) -> ImageDataset:
    """``dataset`` with the images of class ``label`` replaced by flat noise (a failed generator)."""
    images = dataset.as_array().copy()
    members = dataset.targets == label
    images[members] = np.random.default_rng(0).integers(0, 60, size=images[members].shape, dtype=np.uint8)
    return ImageDataset.from_arrays(images, dataset.targets, dataset.classes, name="generated")


@pytest.mark.slow
def test_a_failed_class_shows_in_its_measures(make_pattern_dataset: Callable[..., ImageDataset],
                                              tmp_path: Path) -> None:
    real = make_pattern_dataset(40, seed=0)
    generated = _degraded(make_pattern_dataset(20, seed=3), label=2)
    summary = inspect_generated(generated, real, tmp_path, features="thumbnails", thumbnails_per_class=3)
    good, failed = summary.group("horizontal"), summary.group("diagonal")
    # In pixel space noise is far from every real image: the failed class keeps few of the real
    # images covered and crowds none of them.
    assert good.prdc.coverage > 0.8 and failed.prdc.coverage < 0.2
    assert failed.prdc.density < good.prdc.density / 2 and failed.prdc.precision < good.prdc.precision
    assert failed.frechet_distance > good.frechet_distance
    assert summary.overall.generated == 60 and summary.overall.real == 120
    assert len(good.nearest) == 3 and good.nearest[0].distance <= good.farthest[0].distance
    assert summary.overall.farthest[0].label == "diagonal"  # noise is farthest from everything real
    assert "thumbnails" in summary.feature_description
    # The files: the summary round-trips, the page names every class, the grid has one row per class.
    assert read_summary(tmp_path) == summary
    assert InspectSummary.from_dict(json.loads((tmp_path / "summary.json").read_text())) == summary
    page = (tmp_path / "inspect.html").read_text()
    assert all(name in page for name in real.classes) and "data:image/png;base64," in page
    grid = Image.open(tmp_path / "thumbnails.png")
    assert grid.height == 3 * (3 * 28 + 2 * 2)  # 3 rows of 28 px images, 2 px gaps, scaled 3x


@pytest.mark.slow
def test_reference_space_trains_once_and_checks_classes(make_pattern_dataset: Callable[..., ImageDataset],
                                                        tmp_path: Path) -> None:
    real = make_pattern_dataset(30, seed=0)
    generated = make_pattern_dataset(10, seed=4).subset(np.arange(20), name="generated")
    config = AuditConfig(epochs=1, seed=0)
    summary = inspect_generated(generated, real, tmp_path, config=config, nearest_k=3)
    assert "penultimate layer" in summary.feature_description and summary.feature_space == "reference"
    saved = list(tmp_path.glob("reference-*/reference-model/config.json"))
    assert len(saved) == 1
    again = inspect_generated(generated, real, tmp_path, config=config, nearest_k=3)
    assert again.overall.prdc == summary.overall.prdc  # the saved model was reused
    assert len(list(tmp_path.glob("reference-*"))) == 1
    other = ImageDataset.from_arrays(generated.as_array(), generated.targets, ["a", "b", "c"], name="other")
    with pytest.raises(DataError, match="not classes of the reference"):
        inspect_generated(other, real, tmp_path / "x", features="thumbnails")
    with pytest.raises(ConfigError, match="unknown feature space"):
        inspect_generated(generated, real, tmp_path / "x", features="inception")


@pytest.mark.slow
def test_cli_writes_the_folder(tiny_image_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "inspect"
    result = CliRunner().invoke(app, ["inspect", str(tiny_image_folder), "--reference", str(tiny_image_folder),
                                      "--out", str(out), "--features", "thumbnails", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "overall" in result.output and (out / "summary.json").is_file()
    # The generated set is the real set: every image is its own nearest real image.
    summary = read_summary(out)
    assert summary.overall.prdc.precision == 1.0 and summary.overall.memorisation.near_copies == 90


@pytest.mark.parametrize(("spec", "message"), [
    ("inception", "unknown feature space"), ("clip", "give the model folder"), ("thumbnails:x", "takes no folder"),
])
def test_feature_space_specs(spec: str, message: str) -> None:
    from synthaug.quality import FeatureSpace

    assert str(FeatureSpace.parse("clip:models/clip")) == "clip:models/clip"
    assert FeatureSpace.parse("reference") == FeatureSpace("reference")
    with pytest.raises(ConfigError, match=message):
        FeatureSpace.parse(spec)


def test_model_space_uses_a_saved_model(make_pattern_dataset: Callable[..., ImageDataset], tmp_path: Path) -> None:
    from synthaug.methods import make_method

    real = make_pattern_dataset(10, seed=0)
    make_method("deterministic", backbone="cnn", epochs=1, seed=0).fit(real).save(tmp_path / "model")
    summary = inspect_generated(make_pattern_dataset(8, seed=2), real, tmp_path / "out",
                                features=f"model:{tmp_path / 'model'}", nearest_k=3)
    assert summary.feature_description == f"penultimate layer of the model in {tmp_path / 'model'}"
