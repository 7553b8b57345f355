"""A tiny seeded study, shared by the study and report tests (``tests/report`` imports this
file by path).

The images are 8x8 grayscale: class ``k`` is a bright horizontal bar on row ``2k + 1`` plus
noise, so a one-block CNN learns the task in a couple of epochs, and the "synthetic" folder
draws the same bars with more noise and a one-row jitter (a learnable but worse copy).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# A class name a report must escape, not execute.
HOSTILE_CLASS = "<script>alert(1)</script>"
CLASSES = ["bar-top", "bar-middle", HOSTILE_CLASS]


def bar_images(n_per_class: int, seed: int, noise: float, jitter: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 8, 8)`` uint8 images and ``(N,)`` labels, ``n_per_class`` per class."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(len(CLASSES)):
        for _ in range(n_per_class):
            image = rng.normal(40.0, noise, size=(8, 8))
            row = 2 * label + 1 + (int(rng.integers(-1, 2)) if jitter else 0)
            image[row] += 170.0
            images.append(np.clip(image, 0, 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.asarray(labels)


def write_folder(
    root: Path, images: np.ndarray, labels: np.ndarray, classes: list[str], extra: dict[str, Any] | None = None
) -> Path:
    """An image folder with ``metadata.jsonl`` (labels kept verbatim, any characters)."""
    root.mkdir(parents=True)
    with (root / "metadata.jsonl").open("w") as manifest:
        for index, (image, label) in enumerate(zip(images, labels)):
            file_name = f"c{label}/{index:05d}.png"
            (root / file_name).parent.mkdir(exist_ok=True)
            Image.fromarray(image).save(root / file_name)
            row = {"file_name": file_name, "label": classes[label]}
            if extra:
                row.update(
                    {
                        key: value.format(label=classes[label]) if isinstance(value, str) else value
                        for key, value in extra.items()
                    }
                )
            manifest.write(json.dumps(row) + "\n")
    return root


def write_tiny_folders(root: Path) -> dict[str, Path]:
    """Real pool, real test, synthetic and OOD folders under ``root`` (written once; the
    same bytes every time, so the study cache recognises them)."""
    folders = {name: root / name for name in ("pool", "test", "synthetic", "ood")}
    if all((folder / "metadata.jsonl").is_file() for folder in folders.values()):
        return folders
    write_folder(folders["pool"], *bar_images(14, seed=1, noise=25.0), CLASSES)
    write_folder(folders["test"], *bar_images(12, seed=2, noise=25.0), CLASSES)
    write_folder(
        folders["synthetic"],
        *bar_images(10, seed=3, noise=45.0, jitter=True),
        CLASSES,
        extra={"prompt": "a photo of a {label}", "backend": "hand-made", "model": "bars", "cost_usd": 0.01},
    )
    noise = np.random.default_rng(4).integers(0, 256, size=(12, 8, 8), dtype=np.uint8)
    write_folder(folders["ood"], noise, np.zeros(12, dtype=np.int64), ["noise"])
    return folders


def tiny_config_data(folders: dict[str, Path], **overrides: Any) -> dict[str, Any]:
    """A study config (as parsed YAML) over the tiny folders: 14 units, seconds to run."""
    data: dict[str, Any] = {
        "title": "Are <b>bars</b> worth drawing?",
        "real": {"train": str(folders["pool"]), "test": str(folders["test"]), "val_fraction": 0.25},
        "synthetic": [{"name": "hand-drawn", "path": str(folders["synthetic"])}],
        "regimes": [
            {"name": "real", "data": "real", "sizes": [3, 8]},
            {"name": "synthetic", "data": "synthetic", "sizes": [3, 8]},
            {
                "name": "real+synthetic",
                "data": "mixed",
                "sizes": [3],
                "synthetic_per_class": 10,
                "methods": ["deterministic"],
            },
        ],
        "backbones": [{"name": "cnn", "params": {"image_size": 8, "channels": [4], "hidden": 8}}],
        "methods": ["deterministic", {"key": "temperature", "sizes": [8]}],
        "method_params": {"epochs": 3, "batch_size": 8, "learning_rate": 0.01},
        "seeds": [0, 1],
        "ood": [{"name": "noise", "data": str(folders["ood"])}],
        "bootstrap_resamples": 100,
    }
    data.update(overrides)
    return data


def tiny_study_paths(base: Path) -> tuple[dict[str, Path], Path]:
    """The tiny folders and the run folder under a session's base temp folder (shared by the
    study and report tests, so the study runs once per session)."""
    return write_tiny_folders(base / "tiny-data"), base / "tiny-run"


class StopStudy(Exception):
    """Raised from the progress callback to interrupt a study, as Ctrl-C would."""


def interrupted_then_resumed_study(base: Path, stop_after: int = 3) -> dict[str, Any]:
    """Run the tiny study, interrupt it after ``stop_after`` units, rerun it to the end, and
    record what happened (once per session: later callers read the record).

    Returns:
        ``run_dir``, ``config`` (as data), ``rows_after_interruption``,
        ``models_after_interruption``, ``units_total``, ``units_resumed``,
        ``run_in_second_run`` / ``trained_in_second_run`` (unit ids the rerun ran / trained
        a model for), ``first_units`` (those finished before the interruption).
    """
    from synthaug.report import build_report
    from synthaug.study import parse_config, run_study
    from synthaug.study.results import read_rows

    record = base / "tiny-run-record.json"
    if record.is_file():
        return json.loads(record.read_text())
    folders, run_dir = tiny_study_paths(base)
    data = tiny_config_data(folders)
    config = parse_config(data)
    finished: list[str] = []

    def stop(unit: Any, result: Any) -> None:
        finished.append(unit.unit_id)
        if len(finished) == stop_after:
            raise StopStudy

    with contextlib.suppress(StopStudy):
        run_study(config, run_dir, on_unit_done=stop)
    rows_after_interruption = len(read_rows(run_dir / "results.jsonl"))
    models_after_interruption = len(list((run_dir / "cache" / "models").iterdir()))
    rerun: list[tuple[str, bool]] = []
    result = run_study(
        config, run_dir, on_unit_done=lambda unit, row: rerun.append((unit.unit_id, row.trained))
    )
    build_report(run_dir)  # what `synthaug study` does next
    info = {
        "run_dir": str(run_dir),
        "config": data,
        "rows_after_interruption": rows_after_interruption,
        "models_after_interruption": models_after_interruption,
        "units_total": result.units_total,
        "units_resumed": result.units_resumed,
        "run_in_second_run": [unit_id for unit_id, _ in rerun],
        "trained_in_second_run": [unit_id for unit_id, trained in rerun if trained],
        "first_units": finished,
    }
    record.write_text(json.dumps(info))
    return info
