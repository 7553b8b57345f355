"""Guided generation: real images as starting points (SDEdit on ddpm), provenance, leakage guard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthaug.data import ImageDataset, load_dataset
from synthaug.errors import ConfigError
from synthaug.generate import generate_dataset
from synthaug.generate.backends import ImageRequest, make_backend
from synthaug.generate.guided import (
    check_no_leakage,
    load_guidance,
    parse_strengths,
    pixel_sha256,
)

CLASSES = ["Trouser", "Bag"]


@pytest.fixture(scope="module")
def real() -> ImageDataset:
    """Three real Fashion-MNIST images of each of two classes, as a folder would give them."""
    dataset = load_dataset("fashion-mnist:train[:200]")
    keep = np.concatenate([np.flatnonzero(dataset.targets == dataset.classes.index(c))[:3] for c in CLASSES])
    return dataset.subset(keep, name="real")


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.float64)


def test_strengths_parse_and_out_of_range_ones_are_refused():
    assert parse_strengths("0.5, 0.75") == (0.5, 0.75)
    assert parse_strengths(1) == (1.0,)
    for bad in ("0", "1.5", "x", []):
        with pytest.raises(ConfigError, match="strength"):
            parse_strengths(bad)


def test_ddpm_strength_one_is_text_to_image_and_small_strength_returns_the_real_image(real):
    backend = make_backend("ddpm")
    guidance = load_guidance(real, CLASSES, "1")
    source = guidance.images["Bag"][0]
    source_pixels = np.asarray(source.image, dtype=np.float64)

    def make(strength: float | None) -> np.ndarray:
        request = ImageRequest(label="Bag", class_index=1, index=0, seed=7, prompt="a photo of a Bag",
                               init_image=source if strength else None, strength=strength)  # fmt: skip
        (result,) = backend.generate([request])
        return np.asarray(result.image, dtype=np.float64)

    text_only = make(None)
    assert np.array_equal(make(1.0), text_only)
    distances = {s: np.abs(make(s) - source_pixels).mean() for s in (0.02, 0.3, 0.8)}
    assert distances[0.02] < 6  # out of 255: the real image back, up to a little noise
    assert distances[0.02] < distances[0.3] < distances[0.8]
    assert np.abs(text_only - source_pixels).mean() > distances[0.3]


@pytest.mark.slow
def test_guided_run_uses_image_j_mod_n_and_records_provenance(real, tmp_path):
    out = tmp_path / "guided"
    guidance = load_guidance(real, CLASSES, "0.3,0.6")
    summary = generate_dataset(out, CLASSES, 7, init_images=guidance, seed=3)
    assert summary["generated"] == 14
    records = real.records
    for row in rows(out):
        label, index = row["label"], row["index"]
        sources = guidance.images[label]
        expected = sources[index % 3]
        provenance = row["init_image"]
        assert provenance["file_name"] == expected.file_name
        assert provenance["sha256"] == expected.sha256 == pixel_sha256(expected.image)
        assert provenance["variant"] == index // 3
        assert provenance["strength"] in (0.3, 0.6)
        assert row["extra"]["strength"] == provenance["strength"]
    # A built-in dataset names its images SOURCE[INDEX].
    first_trouser = records[int(np.flatnonzero(real.targets == real.classes.index("Trouser"))[0])]
    assert guidance.images["Trouser"][0].file_name == f"{first_trouser['source']}[{first_trouser['index']}]"
    assert {row["init_image"]["strength"] for row in rows(out)} == {0.3, 0.6}
    # The same settings resume (nothing new); another strength list is another run.
    assert generate_dataset(out, CLASSES, 7, init_images=guidance, seed=3)["generated"] == 0
    with pytest.raises(ConfigError, match="init_images"):
        generate_dataset(out, CLASSES, 7, init_images=load_guidance(real, CLASSES, "0.3"), seed=3)


def test_folder_sources_are_named_by_file_and_hashed_by_bytes(real, tmp_path):
    folder = tmp_path / "real"
    for position in range(len(real)):
        image, label = real[position]
        target = folder / real.classes[label] / f"{position}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target)
    guidance = load_guidance(str(folder), CLASSES, "0.5")
    first = guidance.images["Trouser"][0]
    path = folder / first.file_name
    assert path.is_file()
    import hashlib

    assert first.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert first.pixels_sha256 == pixel_sha256(Image.open(path))
    assert guidance.content_hashes() == load_guidance(real, CLASSES, "0.5").content_hashes()


def test_dry_run_plans_guidance_and_writes_nothing(real, tmp_path):
    out = tmp_path / "plan"
    plan = generate_dataset(out, CLASSES, 4, init_images=load_guidance(real, CLASSES, "0.5"), dry_run=True)
    assert plan["to_generate"] == 8 and plan["init_images"]["images_per_class"] == {"Trouser": 3, "Bag": 3}
    assert not out.exists()


def test_missing_class_and_missing_strength_are_one_line_errors(real, tmp_path):
    with pytest.raises(ConfigError, match="no real images of class|has no images"):
        load_guidance(real, ["Trouser", "Sneaker"], "0.5")
    with pytest.raises(ConfigError, match="needs --strength"):
        generate_dataset(tmp_path / "o", CLASSES, 2, init_images=load_guidance(real, CLASSES))


def test_leakage_guard_finds_a_test_image_saved_as_a_png_elsewhere(real, tmp_path):
    test_set = load_dataset("fashion-mnist:train[:200]").subset([0, 1, 2], name="test")
    copy = tmp_path / "copy" / "bag"
    copy.parent.mkdir()
    copy.mkdir()
    test_set[1][0].save(copy / "renamed.png")
    trousers = real.subset(np.flatnonzero(real.targets == real.classes.index("Trouser")))
    clean = load_guidance(trousers, ["Trouser"], "0.5")
    check_no_leakage(clean.content_hashes(), {"test": test_set.subset([0])})
    leaked = load_guidance(str(tmp_path / "copy"), ["bag"], "0.5")
    with pytest.raises(ConfigError, match="also in the test set"):
        check_no_leakage(leaked.content_hashes(), {"validation": real, "test": test_set})


_CHILD = """
import sys
from synthaug.data import load_dataset
from synthaug.generate import generate_dataset
from synthaug.generate.guided import load_guidance
real = load_dataset("fashion-mnist:train[:60]")
generate_dataset(sys.argv[1], ["Trouser", "Bag"], 30, init_images=load_guidance(real, ["Trouser", "Bag"], "0.4,0.7"),
                 backend_options={"batch_size": 1}, seed=5)
"""


@pytest.mark.slow
def test_sigkill_mid_guided_run_then_rerun_finishes_the_same(tmp_path):
    out = tmp_path / "out"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(out)], env=os.environ.copy())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        manifest = out / "metadata.jsonl"
        if manifest.exists() and manifest.read_text().count("\n") >= 4:
            break
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    killed_at = len(rows(out))
    assert 4 <= killed_at < 60
    real = load_dataset("fashion-mnist:train[:60]")
    guidance = load_guidance(real, ["Trouser", "Bag"], "0.4,0.7")
    summary = generate_dataset(out, ["Trouser", "Bag"], 30, init_images=guidance, seed=5)
    assert summary["reused"] == killed_at and summary["generated"] == 60 - killed_at
    final = rows(out)
    assert len({row["file_name"] for row in final}) == 60
    # A slot made before the kill equals the same slot made from scratch in one go.
    fresh = tmp_path / "fresh"
    generate_dataset(fresh, ["Trouser", "Bag"], 30, init_images=guidance, seed=5)
    first = final[0]["file_name"]
    assert np.array_equal(pixels(out / first), pixels(fresh / first))


@pytest.mark.slow
def test_cli_guided_generation_and_tuning(tmp_path):
    from typer.testing import CliRunner

    import synthaug.cli.main  # noqa: F401  (registers the commands)
    from synthaug.cli._app import app

    real = "fashion-mnist:train[50000:50100]"
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "g"), "--per-class", "2", "--classes",
                                      "Trouser,Bag", "--init-images", real, "--strength", "0.3,0.6"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {row["init_image"]["strength"] for row in rows(tmp_path / "g")} <= {0.3, 0.6}
    refused = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "x"), "--per-class", "2", "--classes",
                                       "Trouser", "--strength", "0.5"])  # fmt: skip
    assert isinstance(refused.exception, ConfigError) and "--init-images" in str(refused.exception)
    tuned = CliRunner().invoke(app, ["train-generator", "--init-from", "ddpm-fashion-mnist", "--data", real,
                                     "--out", str(tmp_path / "gen"), "--steps", "2", "--no-progress"])  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    assert "near-copies of the training images" in tuned.output
    assert json.loads((tmp_path / "gen" / "tuning_check.json").read_text())["steps"] == 2
