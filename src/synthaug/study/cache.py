"""A content-addressed store for what a study computes: trained models and predictions.

Every entry's key is the sha256 of a JSON description of everything that produced it (data
fingerprints, the method's and backbone's resolved configuration with every default filled in,
training config, seed, torch threads), so a rerun — after an interruption, by another study
pointed at the same folder, or by a later release that changed no default — reuses an entry
exactly when it would compute the same thing. The synthaug version is recorded in each entry
(``key.json``, the saved method's config), not keyed on. Entries are written under a temporary name and renamed into
place, so an interrupted write never leaves an entry that looks complete.

Layout::

    CACHE/models/<key>/          a saved method (safetensors + JSON) and key.json
    CACHE/predictions/<key>.npz  probability samples (S, N, C) and labels (N,)
    CACHE/generated/<key>/       image folders generated for the study
    CACHE/audits/<key>/          audits of synthetic sources (``synthaug.audit.audit_dataset``)
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import synthaug
from synthaug.errors import ConfigError
from synthaug.fileio import sha256_bytes

__all__ = ["StudyCache", "content_key"]


def content_key(description: Mapping[str, Any]) -> str:
    """sha256 hex digest of ``description`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(description, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_bytes(text.encode("utf-8"))


class StudyCache:
    """Models, predictions and generated folders under one root, addressed by content key.

    Args:
        root: The cache folder (created on first write).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- models ---------------------------------------------------------------------------

    def model_dir(self, key: str) -> Path:
        """Folder of the model with content key ``key`` (may not exist yet)."""
        return self.root / "models" / key

    def has_model(self, key: str) -> bool:
        """Whether a complete model is stored under ``key``."""
        return (self.model_dir(key) / "key.json").is_file()

    def save_model(self, key: str, description: Mapping[str, Any], save: Callable[[Path], None]) -> Path:
        """Store a model: ``save(directory)`` writes it into a temporary folder that is then
        renamed to its final place, with ``key.json`` recording ``description`` (and the
        synthaug version that trained it).

        Returns:
            The model's folder.
        """
        final = self.model_dir(key)
        staging = final.with_name(f".{key}.partial-{os.getpid()}")
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        save(staging)
        # key.json is written last: its presence marks the entry complete. It records the version
        # that trained the model too, for provenance: the key leaves it out (a release that
        # changes no default reuses the entry).
        record = {**description, "synthaug_version": synthaug.__version__}
        (staging / "key.json").write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
        if final.exists():  # another process finished the same entry first; keep theirs
            shutil.rmtree(staging)
        else:
            os.replace(staging, final)
        return final

    # -- predictions ----------------------------------------------------------------------

    def predictions_path(self, key: str) -> Path:
        """File of the predictions with content key ``key`` (may not exist yet)."""
        return self.root / "predictions" / f"{key}.npz"

    def has_predictions(self, key: str) -> bool:
        """Whether predictions are stored under ``key``."""
        return self.predictions_path(key).is_file()

    def save_predictions(self, key: str, probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> Path:
        """Store probability samples ``(S, N, C)`` and labels ``(N,)`` atomically."""
        from synthaug.metrics import save_predictions

        # save_predictions itself writes beside the path and renames over it.
        return save_predictions(self.predictions_path(key), probs, labels, classes=classes)

    # -- generated images -----------------------------------------------------------------

    def generated_dir(self, key: str) -> Path:
        """Folder for images generated from the spec with content key ``key``."""
        return self.root / "generated" / key

    # -- audits ---------------------------------------------------------------------------

    def targeted_run_path(self, key: str) -> Path:
        """File of the targeted run (a unit's rounds) with content key ``key`` (may not exist yet)."""
        return self.root / "targeted" / f"{key}.json"

    def audit_dir(self, key: str) -> Path:
        """Folder of the audit with content key ``key`` (may not exist yet)."""
        return self.root / "audits" / key

    def has_audit(self, key: str) -> bool:
        """Whether a complete audit is stored under ``key`` (an interrupted one resumes in place)."""
        from synthaug.audit.filter import read_complete_audit

        try:
            read_complete_audit(self.audit_dir(key))
        except ConfigError:  # missing, unreadable or unfinished: audit (again)
            return False
        return True
