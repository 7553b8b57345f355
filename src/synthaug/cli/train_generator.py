"""``synthaug train-generator``: train the embedded class-conditional diffusion generator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from synthaug.cli._app import app
from synthaug.errors import ConfigError
from synthaug.generate.ddpm.train import TrainingConfig, train_generator
from synthaug.generate.ddpm.unet import UNetConfig


def _parse_channels(text: str) -> tuple[int, ...]:
    try:
        channels = tuple(int(part) for part in text.split(","))
    except ValueError:
        channels = ()
    if not channels or min(channels) < 1:
        raise ConfigError(f"--block-channels {text!r} is not a comma-separated list of positive integers")
    return channels


@app.command("train-generator")
def train_generator_cli(
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="Labelled images: an image folder or a built-in dataset such as "
            "'fashion-mnist:train[:50000]'.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Generator directory. Rerunning the same command continues from its checkpoint."
        ),
    ],
    steps: Annotated[
        int, typer.Option(help="Training steps in total; a larger value extends a finished run.")
    ] = TrainingConfig.steps,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = TrainingConfig.batch_size,
    learning_rate: Annotated[float, typer.Option(help="AdamW learning rate.")] = TrainingConfig.learning_rate,
    seed: Annotated[int, typer.Option(help="Seed of all training randomness.")] = TrainingConfig.seed,
    checkpoint_every: Annotated[
        int, typer.Option(help="Steps between resumable checkpoints.")
    ] = TrainingConfig.checkpoint_every,
    image_size: Annotated[
        int | None, typer.Option(help="Side of the square training images (default: the first image's height).")
    ] = None,
    block_channels: Annotated[
        str, typer.Option(help="UNet channels per resolution level, comma-separated.")
    ] = ",".join(map(str, UNetConfig.block_channels)),
    device: Annotated[str | None, typer.Option(help="Torch device (default: cpu).")] = None,
) -> None:
    """Train a class-conditional diffusion generator (DDPM) usable with `--backend ddpm --model OUT`."""
    from synthaug.data import load_dataset

    console = Console(highlight=False, soft_wrap=True)
    dataset = load_dataset(data)
    result = train_generator(
        dataset,
        out,
        training=TrainingConfig(
            steps=steps,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            checkpoint_every=checkpoint_every,
        ),
        unet=UNetConfig(block_channels=_parse_channels(block_channels)),
        image_size=image_size,
        device=device,
    )
    if result.resumed_from and result.resumed_from >= steps:
        console.print(f"already trained to step {result.resumed_from:,}; give a larger --steps to extend it")
    elif result.resumed_from:
        console.print(f"continued from step {result.resumed_from:,}")
    console.print(
        escape(
            f"generator of {result.num_parameters:,} parameters trained {result.steps:,} steps "
            f"in {result.wall_seconds / 60:.1f} min (final loss {result.final_loss:.4f}); "
            f"saved to {result.out_dir}"
        )
    )
