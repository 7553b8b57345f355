"""``synthaug train``: fit an uncertainty method on one or several (mixed) training sets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from synthaug.cli._app import app
from synthaug.cli._progress import progress_reporter
from synthaug.errors import ConfigError

if TYPE_CHECKING:
    from synthaug.methods import UncertaintyMethod
    from synthaug.progress import ProgressCallback

TRAINING_FILE = "training.json"


def parse_assignments(assignments: list[str], option: str) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` strings; a VALUE that is valid JSON is decoded (``5``, ``true``,
    ``[32, 64]``, ``null``), anything else stays a string."""
    parsed: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(f"{option} {assignment!r}: expected KEY=VALUE, e.g. {option} epochs=10")
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


def train(
    train_data: list[str],
    out: str | Path,
    *,
    method: str = "deterministic",
    backbone: str = "cnn",
    weights: list[float] | None = None,
    val_data: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    backbone_options: dict[str, Any] | None = None,
    weights_from_audit: str | Path | None = None,
    skip_bad: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> UncertaintyMethod:
    """Load the training data, fit a method and save it to ``out``.

    Several training sets are mixed with :func:`synthaug.data.concat_datasets` (same class
    names required); ``weights`` gives each set's per-example loss weight.

    Args:
        train_data: Dataset specs (image folders or built-in names such as
            ``fashion-mnist:train[:50000]``).
        out: Model directory to write (``config.json``, ``weights.safetensors`` and
            ``training.json`` with the data it was trained on).
        method: Key of :data:`synthaug.methods.METHODS`.
        backbone: Backbone name.
        weights: One loss weight per training set, or ``None`` (all 1).
        val_data: Validation set spec; ``None`` holds out a seeded stratified split of the
            training data (the method's ``val_fraction``).
        hyperparameters: The method's keyword hyper-parameters.
        backbone_options: Keyword options of the backbone.
        weights_from_audit: An audit folder (``synthaug audit``): every image of the training
            sets it covers (matched by ``file_name``) gets its audit weight
            (:func:`synthaug.audit.audit_weights`), times its set's ``weights`` entry; sets it
            does not cover keep weight 1 per image.
        skip_bad: Skip unreadable images (counted) instead of stopping.
        overwrite: Replace a model already in ``out``.
        progress: Called with progress events of feature extraction and training.

    Returns:
        The fitted method.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} already exists and is not empty; choose a new --out or pass --overwrite")
    if not train_data:
        raise ConfigError("give at least one training set with --train")
    if weights and len(weights) != len(train_data):
        raise ConfigError(
            f"got {len(weights)} --weight value(s) for {len(train_data)} --train set(s); give one per set"
        )
    hyperparameters = dict(hyperparameters or {})
    for reserved in ("backbone", "backbone_options", "progress"):
        if reserved in hyperparameters:
            raise ConfigError(f"set the {reserved.replace('_', ' ')} with --{reserved.replace('_', '-')}, not --param")
    # Data first: a missing folder is reported before torch is imported (seconds).
    from synthaug.data import concat_datasets, load_dataset

    parts = [load_dataset(spec, skip_bad=skip_bad) for spec in train_data]
    validation_set = None if val_data is None else load_dataset(val_data, skip_bad=skip_bad)
    audit_weighted = [False] * len(parts)
    if weights_from_audit is not None:
        from synthaug.audit.weights import weight_sets_from_audit

        parts, audit_weighted = weight_sets_from_audit(parts, weights_from_audit)
    training_set = parts[0] if len(parts) == 1 and not weights else concat_datasets(parts, weights=weights)

    import synthaug
    from synthaug.fileio import atomic_write_text
    from synthaug.methods import make_method

    estimator = make_method(method, backbone=backbone, backbone_options=backbone_options or None,
                            progress=progress, **hyperparameters)
    estimator.fit(training_set, validation_set)

    estimator.save(out, overwrite=overwrite)
    provenance = {
        "train": [{"spec": spec, "images": len(part), "fingerprint": part.fingerprint(), "audit_weighted": weighted}
                  for spec, part, weighted in zip(train_data, parts, audit_weighted)],
        "weights": weights,
        "weights_from_audit": None if weights_from_audit is None else str(Path(weights_from_audit).resolve()),
        "val": None if validation_set is None else {"spec": val_data, "images": len(validation_set),
                                                     "fingerprint": validation_set.fingerprint()},
        "skipped_bad_files": sum(len(part.skipped) for part in parts),
        "synthaug_version": synthaug.__version__,
    }
    atomic_write_text(out / TRAINING_FILE, json.dumps(provenance, indent=2) + "\n")
    return estimator


@app.command("train")
def train_cli(
    train_data: Annotated[list[str], typer.Option("--train", help="Training set: image folder, built-in name "
                                                  "(e.g. fashion-mnist:train[:50000]) or hf:NAME[:SPLIT]; "
                                                  "repeat to mix sets.")],
    out: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    method: Annotated[str, typer.Option(help="Uncertainty method: deterministic, temperature, mc-dropout, "
                                        "ensemble, bnn, laplace.")] = "deterministic",
    backbone: Annotated[str, typer.Option(help="cnn, a torchvision model name (resnet18, resnet152, ...) "
                                          "or timm:MODEL.")] = "cnn",
    weight: Annotated[list[float] | None, typer.Option("--weight", help="Loss weight of each --train set, "
                                                        "in the same order (default: all 1).")] = None,
    val: Annotated[str | None, typer.Option("--val", help="Validation set; default: a seeded stratified "
                                            "split of the training data.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training data [default: 15, or more on a "
                                               "small set, for at least `--param min_steps` optimiser steps].")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Train exactly this many optimiser steps, whatever the "
                                                  "training set's size (instead of --epochs).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Examples per gradient step.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Initial learning rate.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, mps; default: CUDA when present.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="Other method hyper-parameter as KEY=VALUE "
                                                    "(JSON values), e.g. --param num_members=5.")] = None,
    backbone_option: Annotated[list[str] | None, typer.Option(
        "--backbone-option", help="Backbone option as KEY=VALUE, e.g. --backbone-option weights_path=r152.pt."
    )] = None,
    weights_from_audit: Annotated[Path | None, typer.Option(
        "--weights-from-audit", help="Audit folder (synthaug audit): weight each image of the --train set(s) it "
        "covers by the out-of-sample probability of its label (times the set's --weight).")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images instead of stopping.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing model directory.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress (bars on a terminal, "
                                           "one line per epoch in a log).")] = True,
) -> None:
    """Train a classifier with an uncertainty method and save it to a model directory."""
    hyperparameters = parse_assignments(param or [], "--param")
    shortcuts = {"epochs": epochs, "max_steps": max_steps, "seed": seed, "batch_size": batch_size,
                 "learning_rate": learning_rate, "device": device}
    for name, value in shortcuts.items():
        if value is not None:
            if name in hyperparameters:
                raise ConfigError(f"{name} is given both as --{name.replace('_', '-')} and as --param; give it once")
            hyperparameters[name] = value
    with progress_reporter(progress) as reporter:
        estimator = train(
            train_data,
            out,
            method=method,
            backbone=backbone,
            weights=weight or None,
            val_data=val,
            hyperparameters=hyperparameters,
            backbone_options=parse_assignments(backbone_option or [], "--backbone-option"),
            weights_from_audit=weights_from_audit,
            skip_bad=skip_bad,
            overwrite=overwrite,
            progress=reporter,
        )
    from rich.markup import escape

    from synthaug.cli._console import make_console

    console = make_console()
    for history in estimator.training_histories():
        best = history.epochs[(history.best_epoch or len(history.epochs)) - 1]
        console.print(
            f"epoch {best['epoch']}/{len(history.epochs)} kept: val NLL {best.get('val_nll', float('nan')):.4f}, "
            f"val accuracy {best.get('val_accuracy', float('nan')):.4f}, {history.seconds:.1f} s"
        )
    for name, value in estimator.fitted_summary().items():
        console.print(f"fitted {name} {value:.4f}")
    console.print(f"saved {escape(repr(estimator))} on {len(estimator.classes_)} classes to {escape(str(out))}")
