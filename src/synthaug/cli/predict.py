"""``synthaug predict``: write a saved model's probability samples on a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from synthaug.cli._app import app, require_input
from synthaug.cli._progress import progress_reporter
from synthaug.errors import ConfigError, DataError

if TYPE_CHECKING:
    from synthaug.progress import ProgressCallback


def predict(
    model_dir: str | Path,
    data: str,
    out: str | Path,
    *,
    skip_bad: bool = False,
    overwrite: bool = False,
    device: str | None = None,
    ood: bool = False,
    progress: ProgressCallback | None = None,
) -> Path:
    """Predict ``data`` with the model saved in ``model_dir``; write a predictions file.

    The file holds ``probs`` ``(S, N, C)``, ``labels`` ``(N,)`` and the model's ``classes``
    (see :func:`synthaug.metrics.save_predictions`). The data's classes are matched to the
    model's by name, so labels index the model's classes; a class the model does not know is
    an error, unless ``ood`` says the data is out of distribution: then any classes are
    accepted and the file holds no labels (for ``synthaug evaluate --ood``).

    Args:
        model_dir: Directory written by ``synthaug train`` / ``UncertaintyMethod.save``.
        data: Dataset spec (image folder or built-in name).
        out: ``.npz`` file to write.
        skip_bad: Skip unreadable images instead of stopping.
        overwrite: Replace an existing ``out``.
        device: ``None`` picks CUDA when present.
        ood: The data is out-of-distribution data for this model (e.g. ``digits`` for a
            Fashion-MNIST model): write its probability samples without labels.
        progress: Called with progress events of feature extraction.

    Returns:
        ``out``.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; choose a new --out or pass --overwrite")
    require_input(model_dir, "model directory", "write one with `synthaug train`")
    from synthaug.data import load_dataset

    dataset = load_dataset(data, skip_bad=skip_bad)  # before torch is imported: a missing folder fails at once
    import numpy as np

    from synthaug.methods import load_method
    from synthaug.metrics import save_predictions

    method = load_method(model_dir, device=device, progress=progress)
    if ood:
        return save_predictions(out, method.predict_proba(dataset), None, classes=list(method.classes_))
    unknown = sorted(set(dataset.classes) - set(method.classes_))
    if unknown:
        raise DataError(
            f"{data}: class(es) {', '.join(unknown)} unknown to the model in {model_dir} "
            f"(it knows {', '.join(method.classes_)}); pass --ood for out-of-distribution data"
        )
    dataset = dataset.with_classes(method.classes_)
    probs = method.predict_proba(dataset)
    return save_predictions(out, probs, np.asarray(dataset.targets), classes=list(method.classes_))


@app.command("predict")
def predict_cli(
    model: Annotated[Path, typer.Option("--model", help="Model directory written by `synthaug train`.")],
    data: Annotated[str, typer.Option("--data", help="Image folder, built-in dataset name (e.g. "
                                      "fashion-mnist:test) or hf:NAME[:SPLIT].")],
    out: Annotated[Path, typer.Option("--out", help="Predictions file (.npz) to write.")],
    device: Annotated[str | None, typer.Option(help="cpu, cuda, mps; default: CUDA when present.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images instead of stopping.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing predictions file.")] = False,
    ood: Annotated[bool, typer.Option(
        "--ood", help="Out-of-distribution data (any classes): write probabilities without labels, "
        "for `synthaug evaluate --ood`.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show feature-extraction "
                                           "progress.")] = True,
) -> None:
    """Write probability samples (S, N, C) and labels of a dataset, for `synthaug evaluate`."""
    from rich.markup import escape

    from synthaug.cli._console import make_console

    with progress_reporter(progress) as reporter:
        path = predict(model, data, out, skip_bad=skip_bad, overwrite=overwrite, device=device, ood=ood,
                       progress=reporter)
    make_console().print(f"wrote {escape(str(path))}")
