"""A tiny targeted study (two targeted regimes, epistemic and uniform, over a tiny untrained
ddpm generator), shared by ``tests/study/test_targeted.py`` and ``tests/report`` (run once per
session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.tiny_study import tiny_config_data, write_tiny_folders


def tiny_generator(folder: Path, pool: Path) -> Path:
    """A tiny (untrained) class-conditional ddpm over the tiny classes, written once."""
    from synthaug.data import load_dataset
    from synthaug.generate.ddpm.train import GeneratorTrainingConfig, train_generator
    from synthaug.generate.ddpm.unet import UNetConfig

    if not (folder / "config.json").is_file():
        train_generator(
            load_dataset(str(pool)), folder,
            training=GeneratorTrainingConfig(steps=1, batch_size=4, checkpoint_every=1),
            unet=UNetConfig(block_channels=(8,), layers_per_block=1, patch_size=1, norm_groups=4),
        )
    return folder


def targeted_config_data(folders: dict[str, Path], generator: Path, **regime: Any) -> dict[str, Any]:
    """Two targeted regimes (epistemic with ``regime`` overrides, and uniform) of 12 images in 2 rounds."""
    data = tiny_config_data(folders)
    data.update(
        synthetic=[{"name": "tiny-ddpm", "generate": {"backend": "ddpm", "model": str(generator), "per_class": 1,
                                                        "params": {"steps": 2}}}],
        regimes=[{"name": "targeted", "data": "mixed", "sizes": [3], "budget": 12, "rounds": 2,
                  "allocate": "epistemic", "method": "ensemble", **regime},
                 {"name": "uniform", "data": "mixed", "sizes": [3], "budget": 12, "rounds": 2,
                  "allocate": "uniform", "method": "ensemble"}],
        methods=["deterministic", {"key": "ensemble", "params": {"num_members": 2}}],
        seeds=[0, 1],
        ood=[],
        inspect="thumbnails",
    )
    return data


_RUNS: dict[Path, tuple[Any, Any]] = {}


def tiny_targeted_study(base: Path) -> tuple[Any, Any]:
    """Run the tiny targeted study under ``base`` once per session; returns ``(config, StudyResult)``."""
    from synthaug.study import parse_config, run_study

    if base in _RUNS:
        return _RUNS[base]
    folders = write_tiny_folders(base / "tiny-data")
    generator = tiny_generator(base / "tiny-generator", folders["pool"])
    config = parse_config(targeted_config_data(folders, generator))
    _RUNS[base] = config, run_study(config, base / "tiny-targeted-run")
    return _RUNS[base]
