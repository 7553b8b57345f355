"""The run folder of a study: the one place its file names are written.

``synthaug study CONFIG --out RUN_DIR`` fills one folder::

    RUN_DIR/
      config.resolved.yaml   the config the results belong to (binds the folder to one study)
      environment.json       package versions, platform, device, seeds, wall time
      results.jsonl          one UnitResult per finished unit (the resume log)
      analysis.json          the StudyAnalysis the report draws
      summary.md, summary.csv
      report.html
      inspect/<source>/      what each synthetic source looks like against the real pool
      cache/                 models, predictions, generated images (unless `cache_dir` says otherwise)

:class:`RunFolder` names these paths, binds a folder to its config (a different study is
refused rather than mixed into one log) and writes and reads the environment record. Every
module that reads or writes the folder — the runner, the analysis, the report, the CLI and the
MLflow tracker — asks it for the path instead of spelling the name.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

import synthaug
from synthaug.errors import ConfigError
from synthaug.fileio import atomic_write_text, to_json_value
from synthaug.study.config import StudyConfig, config_to_dict, parse_config

__all__ = [
    "ANALYSIS_FILE",
    "CONFIG_FILE",
    "ENVIRONMENT_FILE",
    "INSPECT_DIR",
    "RECORDED_PACKAGES",
    "REPORT_FILE",
    "RESULTS_FILE",
    "SUMMARY_CSV",
    "SUMMARY_MD",
    "RunFolder",
    "environment_record",
]

CONFIG_FILE = "config.resolved.yaml"
ENVIRONMENT_FILE = "environment.json"
RESULTS_FILE = "results.jsonl"
ANALYSIS_FILE = "analysis.json"
SUMMARY_MD = "summary.md"
SUMMARY_CSV = "summary.csv"
REPORT_FILE = "report.html"
INSPECT_DIR = "inspect"
CACHE_DIR = "cache"

# Packages whose versions can change the numbers; recorded beside the results.
RECORDED_PACKAGES = (
    "synthaug",
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "scikit-learn",
    "pillow",
    "torchmetrics",
    "laplace-torch",
    "openai",
    "diffusers",
    "transformers",
)


@dataclass(frozen=True)
class RunFolder:
    """The files of one study's run folder.

    Attributes:
        root: The folder (``--out``).
    """

    root: Path

    def __init__(self, root: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        """``config.resolved.yaml``: the resolved config the results belong to."""
        return self.root / CONFIG_FILE

    @property
    def environment(self) -> Path:
        """``environment.json``: versions, platform, device, seeds, wall time."""
        return self.root / ENVIRONMENT_FILE

    @property
    def results(self) -> Path:
        """``results.jsonl``: one unit result per line, the resume log."""
        return self.root / RESULTS_FILE

    @property
    def analysis(self) -> Path:
        """``analysis.json``: the study analysis the report draws."""
        return self.root / ANALYSIS_FILE

    @property
    def summary_md(self) -> Path:
        """``summary.md``: the short Markdown summary."""
        return self.root / SUMMARY_MD

    @property
    def summary_csv(self) -> Path:
        """``summary.csv``: one row per group."""
        return self.root / SUMMARY_CSV

    @property
    def report(self) -> Path:
        """``report.html``: the self-contained report."""
        return self.root / REPORT_FILE

    @property
    def inspect(self) -> Path:
        """``inspect/``: one inspection folder per synthetic source."""
        return self.root / INSPECT_DIR

    def cache(self, config: StudyConfig) -> Path:
        """The study cache: the config's ``cache_dir``, else ``cache/`` in the folder."""
        return Path(config.cache_dir) if config.cache_dir else self.root / CACHE_DIR

    def study_files(self) -> list[Path]:
        """The files that hold the study's outcome (what a tracker keeps), those that exist."""
        paths = [self.config, self.environment, self.analysis, self.summary_md, self.summary_csv, self.results]
        return [path for path in paths if path.is_file()]

    def bind(self, config: StudyConfig) -> None:
        """Save ``config.resolved.yaml`` in a new run folder, or check that an existing run
        folder holds this same study.

        The saved config is read through :func:`~synthaug.study.config.parse_config` before
        the comparison, so a folder written in an older layout of the config (flat regime
        keys) still matches the same study.

        Raises:
            ConfigError: The folder holds a study with a different config.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        resolved = config_to_dict(config)
        if self.config.exists():
            previous = yaml.safe_load(self.config.read_text(encoding="utf-8"))
            with contextlib.suppress(ConfigError):  # unreadable: reported as the difference below
                previous = config_to_dict(parse_config(previous))
            difference = _first_difference(previous, resolved)
            if difference is not None:
                raise ConfigError(
                    f"{self.root}: holds a study with a different config (first difference at "
                    f"`{difference}`); choose a new --out folder, or delete {self.config} to start over"
                )
            return
        atomic_write_text(self.config, yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))

    def config_text(self) -> str:
        """``config.resolved.yaml`` as written (empty when absent)."""
        return self.config.read_text(encoding="utf-8") if self.config.is_file() else ""

    def saved_config(self) -> StudyConfig | None:
        """The config the folder is bound to (``None`` when it has none)."""
        if not self.config.is_file():
            return None
        return parse_config(yaml.safe_load(self.config.read_text(encoding="utf-8")))

    def write_environment(self, record: dict[str, Any]) -> Path:
        """Write ``environment.json`` (see :func:`environment_record`)."""
        atomic_write_text(self.environment, json.dumps(to_json_value(record), indent=2))
        return self.environment

    def read_environment(self) -> dict[str, Any]:
        """``environment.json`` (empty when absent)."""
        return json.loads(self.environment.read_text()) if self.environment.is_file() else {}


def environment_record(config: StudyConfig, seconds: float | None = None) -> dict[str, Any]:
    """Package versions, platform, device, torch threads and seeds, saved as ``environment.json``."""
    from synthaug.runtime import pick_device

    versions = {}
    for name in RECORDED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        "synthaug_version": synthaug.__version__,
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(pick_device(config.device)),
        "torch_threads": config.threads,  # of every unit, whatever engine ran it
        "cpu_count": os.cpu_count(),
        "seeds": list(config.seeds),
        "seconds": seconds,
    }


def _first_difference(old: Any, new: Any, path: str = "") -> str | None:
    """Key path of the first difference between two plain-data trees."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new)):
            found = _first_difference(a, b, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    return None if old == new else (path or "(top level)")
