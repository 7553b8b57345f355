"""The audit's HTML page and image grids of suspects.

``audit.html`` is one self-contained file (images inline as base64 PNGs, no scripts, no
network) with the per-class table (readable headers, a legend), the worst images of each class,
the test-set leaks and the duplicates, in the look every synthaug page shares
(:mod:`synthaug.pages`, template ``audit/templates/audit.html.j2``). Every value from the data
(class names, file names, provenance) goes through jinja2's autoescaping, since labels of a
generated set come from user prompts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from synthaug import pages
from synthaug.data import ImageDataset
from synthaug.fileio import atomic_write_text, png_base64

THUMBNAIL_SIDE = 84
"""Side in pixels images are shown at (28x28 images are scaled up 3x, pixelated)."""

COLUMNS = {
    "class": ("class", ""),
    "images": ("images", ""),
    "label_issues": ("label issues", "images confident learning flags as mislabelled"),
    "estimated_noise_rate": ("wrong labels (est.)", "share of labels confident learning estimates to be wrong"),
    "mean_score": ("mean score", "mean combined score, 0 to 1, higher = more likely mislabelled"),
    "cv_accuracy": ("CV accuracy", "accuracy of cross-validated models on the class's own labels"),
    "reference_agreement": ("agrees with real", "share that a model trained on the real reference data "
                                                "labels the same"),
    "duplicates": ("duplicates", "near copies within the set"),
    "reference_copies": ("copies of real", "near copies of reference images"),
    "test_leaks": ("test leaks", "near copies of test images"),
    "diversity": ("diversity", "mean pairwise feature distance"),
    "reference_diversity": ("real diversity", "the same for the reference images of the class"),
    "diversity_ratio": ("diversity ratio", "diversity / real diversity (below 1: less varied than real images)"),
}
"""Header and legend text of each ``classes.csv`` column on the page (the CSV keeps the field names)."""


def _show(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def image_data_uri(image: Image.Image) -> str:
    """A PNG ``data:`` URI of ``image`` (for inline ``<img src>``)."""
    return "data:image/png;base64," + png_base64(image)


def _thumbnail(dataset: ImageDataset, index: int) -> str:
    image = dataset[index][0]
    # Large images are shrunk so the page stays small; small ones stay at their native size
    # and the browser scales them up pixelated.
    if max(image.size) > THUMBNAIL_SIDE:
        image = ImageOps.contain(image, (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return image_data_uri(image)


def render_report(
    path: Path,
    data: ImageDataset,
    rows: list[dict[str, Any]],
    class_rows: list[dict[str, Any]],
    class_columns: Sequence[str],
    context: dict[str, Any],
    test: ImageDataset | None = None,
    per_class: int = 8,
) -> Path:
    """Write ``audit.html``.

    Args:
        path: The file to write.
        data: The audited images.
        rows: The per-image rows of ``scores.jsonl`` (with ``index``, ``rank``, ...).
        class_rows: The rows of ``classes.csv``.
        class_columns: Their columns, in order.
        context: ``data_name``, ``reference_name``, ``test_name``, ``score_components``,
            ``version``, ``seed``.
        test: The test set, to show the image each leak copies.
        per_class: Worst images shown per class.
    """
    environment = pages.environment("synthaug.audit")
    environment.filters["show"] = _show
    by_rank = sorted(rows, key=lambda row: row["rank"])
    worst = []
    for name in data.classes:
        members = [row for row in by_rank if row["label"] == name][:per_class]
        if members:
            worst.append({"label": name, "items": [{**row, "image": _thumbnail(data, row["index"])}
                                                   for row in members]})
    leaks = [
        {**row, "image": _thumbnail(data, row["index"]),
         "match_image": _thumbnail(test, row["_test_index"]) if test is not None else "",
         "match": row["test_match"], "similarity": row["test_similarity"]}
        for row in by_rank if row.get("leakage")
    ]
    columns = list(class_columns)
    html = environment.get_template("audit.html.j2").render(
        title=pages.dataset_title(context["data_name"]),
        headers={column: COLUMNS.get(column, (column, ""))[0] for column in columns},
        legend={column: COLUMNS.get(column, (column, ""))[1] for column in columns},
        images=len(data),
        classes=data.classes,
        class_rows=class_rows,
        class_columns=columns,
        label_issues=sum(bool(row.get("label_issue")) for row in rows),
        worst=worst,
        leaks=leaks,
        duplicates=[row for row in sorted(rows, key=lambda row: row["index"]) if row.get("duplicate_of") is not None],
        **context,
    )
    atomic_write_text(path, html)
    return path


def suspect_grid(dataset: ImageDataset, indices: Sequence[int], columns: int = 10, scale: int = 3) -> Image.Image:
    """The images at ``indices`` tiled row by row into one grayscale grid (2 px gaps).

    Args:
        dataset: The images; all are converted to grayscale and resized to the first one's size.
        indices: Which images, in order.
        columns: Images per row.
        scale: Nearest-neighbour upscaling factor of the whole grid.
    """
    if not len(indices):
        return Image.new("L", (1, 1), 255)
    tiles = [dataset[int(index)][0].convert("L") for index in indices]
    width, height = tiles[0].size
    rows = math.ceil(len(tiles) / columns)
    gap = 2
    grid = Image.new("L", (columns * (width + gap) - gap, rows * (height + gap) - gap), 255)
    for position, tile in enumerate(tiles):
        row, column = divmod(position, columns)
        grid.paste(tile.resize((width, height)), (column * (width + gap), row * (height + gap)))
    return grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST)
