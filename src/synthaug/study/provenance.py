"""What made each synthetic source (backend, model, prompts, cost), and sample images of it.

Read from the source folder's ``metadata.jsonl`` (one row per image, written by
:func:`synthaug.generate.generate_dataset` or by hand) and ``generation.json`` (the settings
of a generated folder), so hand-made folders get what they record.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from synthaug.fileio import read_jsonl
from synthaug.study.records import GeneratorProvenance, SampleImage

__all__ = ["SAMPLES_PER_CLASS", "generator_provenance"]

# Examples of synthetic images per class shown in the report.
SAMPLES_PER_CLASS = 6


def generator_provenance(
    name: str, directory: str, classes: Sequence[str]
) -> tuple[GeneratorProvenance, list[SampleImage]]:
    """What made a synthetic source, and up to :data:`SAMPLES_PER_CLASS` sample images per class.

    Raises:
        DataError: ``metadata.jsonl`` has a line that is not JSON.
    """
    from synthaug.data.folder import METADATA_FILE  # the data package pulls in torch

    root = Path(directory)
    rows, _ = read_jsonl(root / METADATA_FILE)
    settings_path = root / "generation.json"
    settings = json.loads(settings_path.read_text()) if settings_path.is_file() else None
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_class[str(row.get("label"))].append(row)
    samples = [
        SampleImage(label, row.get("revised_prompt") or row.get("prompt"), str((root / row["file_name"]).resolve()))
        for label in classes
        for row in by_class.get(label, [])[:SAMPLES_PER_CLASS]
    ]
    first = rows[0] if rows else {}
    provenance = GeneratorProvenance(
        name=name,
        directory=str(root),
        images=len(rows),
        backend=first.get("backend"),
        model=first.get("model"),
        params=first.get("params"),
        prompt_example=first.get("prompt"),
        cost_usd=float(sum(float(row.get("cost_usd") or 0.0) for row in rows)),
        synthaug_version=first.get("synthaug_version"),
        settings=settings,
    )
    return provenance, samples
