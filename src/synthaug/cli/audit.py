"""``synthaug audit``: score every image of a dataset for label noise, uncertainty and copies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthaug.cli._app import app, require_input
from synthaug.cli._progress import progress_reporter
from synthaug.cli.train import parse_assignments

# The library's defaults and names, repeated here so that `--help` does not import the audit
# (torch, scikit-learn: seconds); tests/cli/test_startup.py checks they match.
DEFAULT_MIN_SIMILARITY = 0.995
LABEL_SCORES = ("cv_label_error", "reference_label_error")
SCORE_COMPONENTS = LABEL_SCORES + ("disagreement", "mutual_information", "expected_entropy")


@app.command("audit")
def audit_cli(
    data: Annotated[str, typer.Argument(metavar="DATA", help="Dataset to audit: image folder or built-in name "
                                        "(e.g. fashion-mnist:train[50000:51000]).")],
    out: Annotated[Path, typer.Option("--out", metavar="AUDIT_DIR", help="Folder for scores.jsonl, classes.csv, "
                                      "audit.html and audit.json; rerun the same command to resume.")],
    reference: Annotated[str | None, typer.Option("--reference", metavar="REAL_DATA", help="Real images of the "
                         "same classes: a reference model is trained on them, and copies of them are flagged.")] = None,
    reference_model: Annotated[Path | None, typer.Option("--reference-model", metavar="MODEL_DIR", help="A model "
                               "saved by `synthaug train` on real data, used instead of training one.")] = None,
    test: Annotated[str | None, typer.Option("--test", metavar="TEST_DATA", help="Test set; images copying a test "
                    "image are flagged as leakage.")] = None,
    method: Annotated[str, typer.Option(help="Method trained on each cross-validation fold (ensemble and "
                                        "mc-dropout also give disagreement and mutual information).")] = "ensemble",
    param: Annotated[list[str] | None, typer.Option("--param", help="Hyper-parameter of the fold method as "
                     "KEY=VALUE (JSON values); default num_members=3 for ensemble.")] = None,
    backbone: Annotated[str, typer.Option(help="cnn, a torchvision model name or timm:MODEL "
                                          "(frozen features).")] = "cnn",
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 5,
    epochs: Annotated[int | None, typer.Option(min=1, help="Training epochs of every model the audit trains "
                      "[default: the methods' own: 15, or more on a small set].")] = None,
    seed: Annotated[int, typer.Option(help="Seeds the folds and the models.")] = 0,
    score_component: Annotated[list[str] | None, typer.Option("--score-component", help="Score averaged (by "
                               f"rank) into the combined score; repeat. One of {', '.join(SCORE_COMPONENTS)}; default "
                               f"{' and '.join(LABEL_SCORES)}.")] = None,
    min_similarity: Annotated[float, typer.Option(help="Thumbnail correlation from which two images are "
                                                  "near-duplicates.")] = DEFAULT_MIN_SIMILARITY,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, mps; default: CUDA when present.")] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images instead of stopping.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an audit of other data or settings "
                                            "in AUDIT_DIR.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress (bars on a terminal, "
                                           "one line per fold and epoch in a log).")] = True,
) -> None:
    """Score how likely each image's label is wrong (cross-validated confident learning, agreement
    with a model trained on real data), its ensemble uncertainty, and find exact and near
    copies within the set, of the reference and of the test set. Never modifies DATA."""
    from rich.markup import escape
    from rich.table import Table

    from synthaug.cli._console import make_console
    from synthaug.data import load_dataset

    # Data first: a missing folder is reported before the audit's imports (torch: seconds).
    require_input(reference_model, "model directory", "write one with `synthaug train`")
    audited = load_dataset(data, skip_bad=skip_bad)
    real = None if reference is None else load_dataset(reference, skip_bad=skip_bad)
    test_set = None if test is None else load_dataset(test, skip_bad=skip_bad)

    from synthaug.audit import AuditConfig, audit_dataset

    default = AuditConfig()
    config = AuditConfig(
        folds=folds, method=method, method_options=parse_assignments(param, "--param") if param else None,
        backbone=backbone, epochs=epochs, seed=seed,
        score_components=tuple(score_component or default.score_components), min_similarity=min_similarity,
    )
    console = make_console()
    err = make_console(stderr=True)
    with progress_reporter(progress) as reporter:
        result = audit_dataset(
            audited,
            out,
            reference=real,
            reference_model_dir=reference_model,
            test=test_set,
            config=config,
            device=device,
            overwrite=overwrite,
            progress=reporter,
            log=lambda message: err.print(escape(message), style="dim"),
        )
    summary = result.summary
    console.print(
        f"{summary['images']} images: {summary['label_issues']} label issues (confident learning), estimated "
        f"noise rate {summary['estimated_noise_rate']:.1%}, out-of-sample accuracy {summary['cv_accuracy']:.1%}"
        + ("" if summary["reference_agreement"] is None
           else f", agreement with the reference model {summary['reference_agreement']:.1%}")
    )
    copies = [f"{summary['duplicates']} duplicates within the set"]
    if summary["reference_copies"] is not None:
        copies.append(f"{summary['reference_copies']} copies of reference images")
    if summary["test_leaks"] is not None:
        copies.append(f"{summary['test_leaks']} copies of test images (leakage)")
    console.print(", ".join(copies))
    table = Table(title="most suspicious images")
    for column in ("rank", "file_name", "label", "score", "predicted", "flags"):
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    for row in result.rows[:10]:
        flags = [name for name, on in (("label issue", row["label_issue"]), ("duplicate", row["duplicate_of"]),
                                       ("leak", row["leakage"])) if on]
        predicted = row["reference_predicted"] or row["cv_predicted"]
        table.add_row(str(row["rank"]), escape(row["file_name"]), escape(row["label"]), f"{row['score']:.3f}",
                      escape(predicted), ", ".join(flags))
    console.print(table)
    console.print(f"wrote {escape(str(out))}/scores.jsonl, classes.csv, audit.html, audit.json")
