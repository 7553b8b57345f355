"""What the generator made: the study inspects each synthetic source against the real pool.

For every synthetic source, :func:`inspect_sources` runs :func:`synthaug.quality.inspect_generated`
against the real training pool (the images a classifier trains on, so "memorised" means
"copies the real training data"), in the feature space of the config's ``inspect`` key, and
writes ``RUN_DIR/inspect/<source>/`` (``summary.json``, ``inspect.html``, ``thumbnails.png``).
A folder whose ``identity.json`` matches is reused, so a rerun inspects nothing again; the
reference model is shared by every source (saved under the study cache).
"""

from __future__ import annotations

import json
from pathlib import Path

import synthaug
from synthaug.errors import SynthaugError
from synthaug.fileio import atomic_write_text
from synthaug.progress import ProgressCallback
from synthaug.study.cache import StudyCache
from synthaug.study.config import StudyConfig, audit_config
from synthaug.study.data import StudyData
from synthaug.study.run_folder import INSPECT_DIR, RunFolder

__all__ = ["INSPECT_DIR", "inspect_sources", "inspection_dirs"]

IDENTITY_FILE = "identity.json"
INSPECT_PROTOCOL = 2
"""Version of what an inspection measures; 2: equal-size samples beside a real-vs-real baseline, KID."""


def inspection_dirs(run_dir: str | Path) -> dict[str, Path]:
    """Inspection folder of each synthetic source of a run, by source name (those that exist)."""
    root = RunFolder(run_dir).inspect
    found = {}
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        identity = folder / IDENTITY_FILE
        if identity.is_file() and (folder / "summary.json").is_file():
            found[json.loads(identity.read_text())["source"]] = folder
    return found


def inspect_sources(
    config: StudyConfig, data: StudyData, cache: StudyCache, run_dir: str | Path,
    progress: ProgressCallback | None = None,
) -> dict[str, Path]:
    """Inspect every synthetic source (or find its inspection); returns the folders by source name."""
    from synthaug.generate.slug import class_folders
    from synthaug.quality import inspect_generated

    features = config.inspect or "reference"
    if features == "off" or not data.synthetic:
        return {}
    settings = audit_config(config)
    folders = class_folders(list(data.synthetic))
    found = {}
    for name, synthetic in data.synthetic.items():
        out = RunFolder(run_dir).inspect / folders[name]
        identity = {"source": name, "protocol": INSPECT_PROTOCOL, "synthetic": synthetic.fingerprint(),
                    "reference": data.pool.fingerprint(), "features": features, "settings": settings.to_dict(),
                    "synthaug_version": synthaug.__version__}
        saved = out / IDENTITY_FILE
        if not (saved.is_file() and json.loads(saved.read_text()) == identity and (out / "summary.json").is_file()):
            try:
                inspect_generated(synthetic, data.pool, out, features=features, config=settings, title=name,
                                  model_dir=cache.root / "inspect-models", device=config.device, progress=progress)
            except SynthaugError as error:
                raise type(error)(f"inspection of synthetic source {name!r}: {error}") from error
            atomic_write_text(saved, json.dumps(identity, indent=2) + "\n")
        found[name] = out
    return found
