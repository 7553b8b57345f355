"""synthaug: can AI-generated images augment a real image dataset?

Generate labelled image datasets from text prompts, train classifiers with uncertainty
methods on real, synthetic and mixed data, evaluate them on one real test set and report
what synthetic data is worth.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("synthaug")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
