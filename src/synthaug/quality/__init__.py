"""What is in a generated dataset, measured against real images: fidelity, diversity, copies.

>>> from synthaug.quality import prdc, frechet_distance, inspect_generated
>>> prdc(real_features, fake_features, nearest_k=5)      # PRDC(precision, recall, density, coverage)
>>> compare_with_real(real_features, fake_features)      # each measure beside a real-vs-real baseline
>>> inspect_generated(generated, real, "inspect/")        # summary.json, inspect.html, thumbnails.png

:func:`prdc` (Naeem et al. 2020), :func:`frechet_distance` and :func:`kernel_inception_distance`
(Bińkowski et al. 2018) work on any feature vectors; :func:`compare_with_real` measures them on
equal-size samples beside a held-out real sample's values;
:func:`memorisation` counts generated images that copy real training images;
:func:`inspect_generated` runs them per class in a named feature space (a classifier trained
on the real images, CLIP, or pixels) and writes what ``synthaug inspect`` shows.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "PRDC",
    "Measure",
    "FeatureSpace",
    "GroupQuality",
    "InspectSummary",
    "Memorisation",
    "compare_with_real",
    "frechet_distance",
    "inspect_generated",
    "kernel_inception_distance",
    "memorisation",
    "prdc",
    "read_summary",
]

_MODULES = {
    "PRDC": "manifold",
    "prdc": "manifold",
    "frechet_distance": "frechet",
    "kernel_inception_distance": "kid",
    "Measure": "baseline",
    "compare_with_real": "baseline",
    "Memorisation": "copies",
    "memorisation": "copies",
    "FeatureSpace": "features",
    "GroupQuality": "inspect",
    "InspectSummary": "inspect",
    "inspect_generated": "inspect",
    "read_summary": "inspect",
}


def __getattr__(name: str) -> Any:
    # Lazy: memorisation and the feature spaces pull in torch, which the CLI's start-up avoids.
    if name in _MODULES:
        import importlib

        return getattr(importlib.import_module(f"synthaug.quality.{_MODULES[name]}"), name)
    raise AttributeError(name)
