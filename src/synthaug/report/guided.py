"""The report's "Guided images beside their real source" section.

For every synthetic source whose images were made from real images (``init_images``), a
row per class: the real image, then the variants made from it with their strengths, read
from the source folder's manifest (``init_image`` of each row) and ``generation.json`` (where
the real images came from). Nothing is trained or generated here.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from PIL import Image

from synthaug.errors import SynthaugError
from synthaug.fileio import png_base64
from synthaug.study.records import StudyAnalysis

__all__ = ["THUMBNAIL_PIXELS", "guided_samples", "thumbnail_png"]

# Side of a report thumbnail in pixels.
THUMBNAIL_PIXELS = 84
# Classes shown per source, and variants shown per real image.
_CLASSES_SHOWN = 10
_VARIANTS_SHOWN = 6
_BUILTIN_ITEM = re.compile(r"^(?P<name>.+)\[(?P<index>\d+)\]$")


def thumbnail_png(image: Image.Image) -> str:
    """A small inline PNG (base64) of ``image``; tiny images are enlarged with hard pixel edges."""
    image = image.convert("RGB" if image.mode not in ("L", "RGB") else image.mode)
    if max(image.size) < THUMBNAIL_PIXELS:
        factor = max(1, THUMBNAIL_PIXELS // max(image.size))
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    else:
        image.thumbnail((THUMBNAIL_PIXELS * 2, THUMBNAIL_PIXELS * 2))
    return png_base64(image, optimize=True)


@functools.lru_cache(maxsize=4)
def _builtin(name: str) -> Any:
    from synthaug.data import load_dataset

    return load_dataset(name)


def _real_image(source: str, file_name: str) -> Image.Image | None:
    """The real image a variant came from: a file of the guidance folder, or ``NAME[INDEX]`` of a
    built-in dataset; ``None`` if it cannot be found any more."""
    try:
        path = Path(source) / file_name
        if path.is_file():
            with Image.open(path) as image:
                image.load()
                return image
        match = _BUILTIN_ITEM.match(file_name)
        if match is not None:
            dataset = _builtin(match["name"])
            return dataset.subset([int(match["index"])])[0][0]
    except (OSError, SynthaugError, IndexError):
        return None
    return None


def guided_samples(analysis: StudyAnalysis) -> list[dict[str, Any]]:
    """Per guided source: per class, one real image and its variants (thumbnails with strengths)."""
    sections = []
    for name, generator in analysis.generators.items():
        folder = Path(generator.directory)
        manifest, config = folder / "metadata.jsonl", folder / "generation.json"
        if not manifest.is_file() or not config.is_file():
            continue
        runs = json.loads(config.read_text()).get("runs") or [{}]
        guidance = runs[-1].get("settings", {}).get("init_images")
        if guidance is None:
            continue
        by_class: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for line in manifest.read_text().splitlines():
            row = json.loads(line)
            if "init_image" in row:
                by_class.setdefault(row["label"], {}).setdefault(row["init_image"]["file_name"], []).append(row)
        rows = []
        for label, sources in list(by_class.items())[:_CLASSES_SHOWN]:
            file_name, variants = next(iter(sources.items()))
            real = _real_image(guidance["source"], file_name)
            rows.append({
                "label": label,
                "real": thumbnail_png(real) if real is not None else None,
                "real_name": file_name,
                "variants": [
                    {"image": thumbnail_png(Image.open(folder / row["file_name"])),
                     "strength": "" if (strength := row["init_image"]["strength"]) is None else f"s = {strength:g}"}
                    for row in variants[:_VARIANTS_SHOWN] if (folder / row["file_name"]).is_file()
                ],
            })  # fmt: skip
        sections.append({"source": name, "from": guidance["source"], "strengths": guidance.get("strengths") or [],
                         "rows": rows})  # fmt: skip
    return sections
