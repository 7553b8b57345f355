"""``synthaug train-generator``: train the embedded class-conditional diffusion generator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthaug.cli._app import app
from synthaug.cli._progress import progress_reporter
from synthaug.errors import ConfigError

# GeneratorTrainingConfig's and UNetConfig's defaults, repeated so that `--help` does not
# import torch (seconds); tests/cli/test_startup.py checks that they match.
DEFAULTS = {"steps": 2500, "batch_size": 128, "learning_rate": 1e-3, "seed": 0, "checkpoint_every": 250,
            "block_channels": (32, 64, 64)}
# TuningConfig's (--init-from) and LoraConfig's (--backend diffusers) defaults, likewise.
TUNING_DEFAULTS = {"steps": 300, "batch_size": 64, "learning_rate": 1e-4}
LORA_DEFAULTS = {"steps": 500, "batch_size": 4, "learning_rate": 1e-4, "rank": 4, "prompt": "a photo of a {label}"}


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
        int | None,
        typer.Option(help=f"Training steps in total; a larger value extends a finished run [default: "
                     f"{DEFAULTS['steps']}; {TUNING_DEFAULTS['steps']} with --init-from; "
                     f"{LORA_DEFAULTS['steps']} for diffusers]."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help=f"Images per step [default: {DEFAULTS['batch_size']}; {TUNING_DEFAULTS['batch_size']} "
                     f"with --init-from; {LORA_DEFAULTS['batch_size']} for diffusers]."),
    ] = None,
    learning_rate: Annotated[
        float | None,
        typer.Option(help=f"AdamW learning rate [default: {DEFAULTS['learning_rate']}; "
                     f"{TUNING_DEFAULTS['learning_rate']} with --init-from and for diffusers]."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of all training randomness.")] = DEFAULTS["seed"],
    checkpoint_every: Annotated[
        int, typer.Option(help="Steps between resumable checkpoints.")
    ] = DEFAULTS["checkpoint_every"],
    image_size: Annotated[
        int | None, typer.Option(help="Side of the square training images (default: the first image's height).")
    ] = None,
    block_channels: Annotated[
        str, typer.Option(help="UNet channels per resolution level, comma-separated.")
    ] = ",".join(map(str, DEFAULTS["block_channels"])),
    device: Annotated[str | None, typer.Option(help="Torch device (default: cpu).")] = None,
    init_from: Annotated[
        str | None,
        typer.Option("--init-from", help="Fine-tune this ddpm generator on --data instead of training from scratch "
                     "('ddpm-fashion-mnist' = the shipped one, or a generator directory): few steps, EMA, then a "
                     "near-copy check of its samples against --data."),
    ] = None,
    backend: Annotated[
        str, typer.Option("--backend", help="ddpm, or diffusers: LoRA on the UNet of --model (DreamBooth-style "
                          "prompts with the class name), saved for `generate --lora OUT`; needs a GPU for real use.")
    ] = "ddpm",
    model: Annotated[
        str | None, typer.Option("--model", help="diffusers: the Stable Diffusion 1.x/2.x pipeline to adapt.")
    ] = None,
    rank: Annotated[int, typer.Option("--rank", help="diffusers: LoRA rank.")] = LORA_DEFAULTS["rank"],
    prompt: Annotated[
        str, typer.Option("--prompt", help="diffusers: prompt of every image, with {label}.")
    ] = LORA_DEFAULTS["prompt"],
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress (a bar on a terminal, "
                                           "a line every few seconds in a log).")] = True,
) -> None:
    """Train a class-conditional diffusion generator (DDPM) usable with `--backend ddpm --model OUT`.

    With --init-from, fine-tune a trained one on a few real images instead; with --backend
    diffusers, train a LoRA of a Stable Diffusion pipeline on them (needs a GPU for real use).
    """
    from rich.markup import escape

    from synthaug.cli._console import make_console
    from synthaug.data import load_dataset

    console = make_console(soft_wrap=True)
    channels = _parse_channels(block_channels)
    dataset = load_dataset(data)  # before torch is imported: a missing folder fails at once
    if backend not in ("ddpm", "diffusers"):
        raise ConfigError(f"--backend {backend!r}: train-generator trains ddpm generators or diffusers LoRAs")
    if backend == "diffusers" or init_from is not None:
        _tune(console, dataset, out, backend, init_from, model, steps, batch_size, learning_rate, seed, rank,
              prompt, device, progress)  # fmt: skip
        return
    steps = DEFAULTS["steps"] if steps is None else steps
    batch_size = DEFAULTS["batch_size"] if batch_size is None else batch_size
    learning_rate = DEFAULTS["learning_rate"] if learning_rate is None else learning_rate

    from synthaug.generate.ddpm.train import GeneratorTrainingConfig, train_generator
    from synthaug.generate.ddpm.unet import UNetConfig

    with progress_reporter(progress) as reporter:
        result = train_generator(
            dataset,
            out,
            training=GeneratorTrainingConfig(
                steps=steps,
                batch_size=batch_size,
                learning_rate=learning_rate,
                seed=seed,
                checkpoint_every=checkpoint_every,
            ),
            unet=UNetConfig(block_channels=channels),
            image_size=image_size,
            device=device,
            progress=reporter,
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


def _tune(console, dataset, out, backend, init_from, model, steps, batch_size, learning_rate, seed, rank, prompt,
          device, progress) -> None:  # fmt: skip
    """``--init-from`` (ddpm fine-tuning with a near-copy check) or ``--backend diffusers`` (LoRA)."""
    from rich.markup import escape

    chosen = {"steps": steps, "batch_size": batch_size, "learning_rate": learning_rate}
    given = {key: value for key, value in chosen.items() if value is not None}
    with progress_reporter(progress) as reporter:
        if backend == "diffusers":
            if model is None or init_from is not None:
                raise ConfigError("--backend diffusers needs --model (the pipeline to adapt) and no --init-from")
            from synthaug.generate.diffusers_lora import LoraConfig, train_lora

            config = LoraConfig(**{**LORA_DEFAULTS, **given, "rank": rank, "prompt": prompt, "seed": seed})
            record = train_lora(dataset, model, out, config, device=device, progress=reporter)
            console.print(escape(f"LoRA of rank {rank} trained {config.steps} steps in {record['seconds']:.0f} s "
                                 f"(final loss {record['final_loss']:.4f}); load it with `synthaug generate "
                                 f"--backend diffusers --model {model} --lora {out}`"))  # fmt: skip
            return
        from synthaug.study.tuning import tune_and_check

        tuned = tune_and_check(dataset, out, init_from, seed=seed, device=device, progress=reporter, **given)
    console.print(escape(f"tuned {init_from} for {tuned.steps} steps on {tuned.images} images in {tuned.seconds:.0f} s "
                         f"(final loss {tuned.final_loss:.4f}); {tuned.near_copies} of {tuned.checked} samples are "
                         f"near-copies of the training images; saved to {tuned.out_dir}"))  # fmt: skip
    if tuned.near_copy_share > 0.05:
        console.print("[bold yellow]warning:[/] the tuned generator copies its training images; "
                      "use fewer --steps or a lower --learning-rate")  # fmt: skip

