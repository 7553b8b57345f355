"""``synthaug filter``: write a copy of a dataset without the images an audit marks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from synthaug.cli._app import app


@app.command("filter")
def filter_cli(
    data: Annotated[str, typer.Argument(metavar="DATA", help="The dataset the audit was run on.")],
    out: Annotated[Path, typer.Option("--out", metavar="CLEAN_DIR", help="New dataset folder (must not exist).")],
    audit: Annotated[Path | None, typer.Option("--audit", metavar="AUDIT_DIR", help="Folder written by "
                     "`synthaug audit` (optional when filtering by CLIP alone).")] = None,
    drop_top: Annotated[str | None, typer.Option("--drop-top", help="Drop the most suspicious images: a "
                        "percentage like 10% or a count like 50.")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Drop images whose combined score "
                         "is at least this (0-1).")] = None,
    drop_label_issues: Annotated[bool, typer.Option("--drop-label-issues", help="Drop the images confident "
                                 "learning flags as label issues.")] = False,
    drop_duplicates: Annotated[bool, typer.Option("--drop-duplicates", help="Drop copies of earlier images (one "
                               "of each group stays) and of reference images.")] = False,
    per_class: Annotated[bool, typer.Option("--per-class", help="Apply --drop-top within each class (keeps the "
                         "classes balanced).")] = False,
    keep_leakage: Annotated[bool, typer.Option("--keep-leakage", help="Keep copies of test images (dropped by "
                            "default).")] = False,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images, as the audit did.")] = False,
    clip: Annotated[Path | None, typer.Option("--clip", metavar="MODEL_DIR", help="A local CLIP model folder "
                    "(CLIPModel + CLIPProcessor save_pretrained) to score the images with.")] = None,
    min_clip_score: Annotated[float | None, typer.Option("--min-clip-score", help="With --clip: drop images whose "
                              "CLIPScore against their prompt (100 x cosine) is below this.")] = None,
    clip_class_agreement: Annotated[bool, typer.Option("--clip-class-agreement", help="With --clip: drop images "
                                    "whose zero-shot CLIP class is not their label.")] = False,
    device: Annotated[str | None, typer.Option(help="Device of the CLIP model; default: CUDA when "
                                                  "present.")] = None,
) -> None:
    """Write CLEAN_DIR: DATA without the images the audit (or a CLIP model) marks (hard links or
    copies), with its own metadata.jsonl, dropped.jsonl (what was dropped and why) and filter.json.
    DATA is never modified."""
    from rich.markup import escape

    from synthaug.cli._console import make_console
    from synthaug.data import load_dataset

    dataset = load_dataset(data, skip_bad=skip_bad)  # before the audit's imports: a missing folder fails at once
    from synthaug.audit.filter import filter_dataset, parse_drop_top

    scores = None
    if clip is not None:
        from synthaug.audit.clip import ClipScorer

        scores = ClipScorer(clip, device=device).score(dataset)
    result = filter_dataset(
        dataset,
        audit,
        out,
        drop_top=None if drop_top is None else parse_drop_top(drop_top),
        threshold=threshold,
        drop_label_issues=drop_label_issues,
        drop_duplicates=drop_duplicates,
        drop_leakage=not keep_leakage,
        per_class=per_class,
        clip=scores,
        min_clip_score=min_clip_score,
        clip_class_agreement=clip_class_agreement,
    )
    console = make_console()
    reasons = ", ".join(f"{count} {kind}" for kind, count in sorted(result.reasons.items()))
    console.print(f"kept {result.kept} images, dropped {len(result.dropped)}" + (f" ({reasons})" if reasons else ""))
    console.print(f"wrote {escape(str(result.out_dir))} (metadata.jsonl, dropped.jsonl, filter.json)")
