"""Safe folder names for class labels.

A label is kept verbatim in the manifest; only its folder name is a slug, so a label such
as ``T-shirt/top`` or ``../../x`` can never name a path outside the output directory.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence

from synthaug.errors import ConfigError

_UNSAFE = re.compile(r"[^a-z0-9]+")
# Long labels are cut so that paths stay well under file-system limits (255 bytes a name).
_MAX_SLUG_LENGTH = 64


def slugify(label: str) -> str:
    """Lower-case ASCII slug of ``label``: ``'T-shirt/top'`` -> ``'t-shirt-top'``.

    Letters and digits are kept, every other run of characters becomes one ``-``; accents
    are folded (``'Café'`` -> ``'cafe'``). A label with no letters or digits (``'../..'``)
    becomes ``'class-<hash>'``, so the slug is never empty, ``.`` or ``..``.
    """
    folded = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    slug = _UNSAFE.sub("-", folded.lower()).strip("-")[:_MAX_SLUG_LENGTH].strip("-")
    if not slug:
        slug = "class-" + hashlib.sha256(label.encode()).hexdigest()[:8]
    return slug


def class_folders(labels: Sequence[str], existing: Mapping[str, str] | None = None) -> dict[str, str]:
    """Map each label to a distinct folder name.

    Labels whose slugs collide (``'T-shirt/top'`` and ``'t-shirt top'``) get a suffix made
    from a hash of the verbatim label, so the mapping does not depend on label order.
    Folders in ``existing`` (from an earlier run into the same directory) are kept as they
    are, and a new label whose slug is already taken gets the suffix.
    """
    folders = dict(existing or {})
    new_labels = [label for label in dict.fromkeys(labels) if label not in folders]
    slugs = {label: slugify(label) for label in new_labels}
    taken = Counter(slugs.values())
    taken.update(folders.values())
    for label, slug in slugs.items():
        if taken[slug] > 1:
            slug = f"{slug}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"
        folders[label] = slug
    result = {label: folders[label] for label in dict.fromkeys(labels)}
    if len(set(result.values())) != len(result):
        raise ConfigError(f"class labels map to the same folder name: {sorted(result)}; rename one")
    return result
