"""synthaug: can AI-generated images augment a real image dataset?

Generate labelled image datasets from text prompts, train classifiers with uncertainty
methods on real, synthetic and mixed data, evaluate them on one real test set and report
what synthetic data is worth.
"""

from typing import Any

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    # The version is looked up when first asked for: importlib.metadata costs tens of
    # milliseconds, which `synthaug --help` should not pay.
    if name != "__version__":
        raise AttributeError(f"module 'synthaug' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("synthaug")
    except PackageNotFoundError:  # running from a source tree that was never installed
        value = "0.0.0+unknown"
    globals()["__version__"] = value
    return value
