"""Every measure of generated images beside the value real images get: the real-vs-real baseline.

k-NN manifold measures depend on both sample sizes: 800 real Fashion-MNIST images against 8,500
other real ones reach a coverage of only 0.37, because 8,500 small real balls are many more than
800 images can touch. Naeem et al. (2020) compare sets of equal size, and even then a number
means little without the value that real images themselves get. So :func:`compare_with_real`,
for each of ``draws`` seeded draws:

1. splits the real images into a *baseline sample* and the rest, and takes a *reference sample*
   from the rest, both of the size ``s`` of the generated set (``s = min(M, N // 2)``; a larger
   generated set is subsampled to ``s`` too);
2. measures the generated sample and the baseline sample against the same reference sample:
   precision, recall, density, coverage (:func:`synthaug.quality.prdc`), the Fréchet distance
   (:func:`synthaug.quality.frechet_distance`) and KID (:mod:`synthaug.quality.kid`, on half of
   each sample, so that the spread over draws includes the generated sample's own sampling
   error, which a fixed set of ``M = s`` images would otherwise hide).

Each :class:`Measure` holds the mean over draws and the 2.5-97.5 percentile range of the draws
for the generated sample, the real baseline and their difference (paired: both met the same
reference sample). A generated value outside the range of the real baseline is a finding,
worded by :func:`describe_gap`.

References:
    Naeem, Oh, Uh, Choi & Yoo, "Reliable Fidelity and Diversity Metrics for Generative
    Models", ICML 2020.
    Chong & Forsyth, "Effectively Unbiased FID and Inception Score and where to find them",
    CVPR 2020.
    Bińkowski, Sutherland, Arbel & Gretton, "Demystifying MMD GANs", ICLR 2018.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from synthaug.errors import DataError
from synthaug.quality.frechet import frechet_distance
from synthaug.quality.kid import unbiased_mmd2
from synthaug.quality.manifold import prdc

__all__ = ["MEASURES", "Interval", "Measure", "compare_with_real", "describe_gap", "equal_sample_size",
           "format_value"]

MEASURES = ("precision", "recall", "density", "coverage", "frechet_distance", "kid")
"""The measures :func:`compare_with_real` returns, in display order."""

LABELS = {"precision": "precision", "recall": "recall", "density": "density", "coverage": "coverage",
          "frechet_distance": "FD", "kid": "KID"}
"""Short display names of :data:`MEASURES`."""

_PRDC = MEASURES[:4]


@dataclass(frozen=True)
class Interval:
    """A value measured over several draws.

    Attributes:
        mean: Mean over the draws.
        low: 2.5th percentile of the draws.
        high: 97.5th percentile of the draws.
    """

    mean: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Any) -> Interval:
        """The mean and 2.5-97.5 percentile range of ``values``."""
        values = np.asarray(values, dtype=np.float64)
        low, high = np.percentile(values, [2.5, 97.5])
        return cls(float(values.mean()), float(low), float(high))

    def to_dict(self) -> dict[str, float]:
        """The record as plain JSON values."""
        return {"mean": self.mean, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Measure:
    """One measure of the generated images beside the same measure of real images.

    Attributes:
        generated: The generated sample against the reference sample, over the draws.
        real: A held-out real sample of the same size against the same reference sample (the
            real-vs-real baseline).
        difference: ``generated - real``, paired by draw.
    """

    generated: Interval
    real: Interval
    difference: Interval

    @property
    def beyond_real(self) -> bool:
        """Whether the generated value lies outside the range real samples of its size reach.

        The baseline sample is redrawn at every draw, so its range is the spread of this measure
        for a real sample of this size (its own sampling error included); the generated set is
        one such sample, so its value outside that range is a gap that sampling does not explain.
        (The paired ``difference`` range would not do: when every generated image is used at every
        draw, it leaves out the generated sample's own sampling error.)
        """
        return self.generated.mean < self.real.low or self.generated.mean > self.real.high

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON values."""
        return {"generated": self.generated.to_dict(), "real": self.real.to_dict(),
                "difference": self.difference.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measure:
        """The record from :meth:`to_dict`'s output."""
        return cls(**{key: Interval(**data[key]) for key in ("generated", "real", "difference")})


def equal_sample_size(generated: int, real: int) -> int:
    """Size of the three equal samples (generated, baseline, reference): ``min(generated, real // 2)``."""
    return min(generated, real // 2)


def compare_with_real(
    real_features: Any, fake_features: Any, *, nearest_k: int = 5, draws: int = 10, seed: int = 0,
) -> dict[str, Measure]:
    """Every measure of ``fake_features`` beside a held-out real sample's, at equal sizes.

    Args:
        real_features: Real feature vectors ``(N, D)``; split into baseline and reference samples.
        fake_features: Generated feature vectors ``(M, D)``, in the same space.
        nearest_k: k of precision, recall, density and coverage.
        draws: Seeded draws of the samples (the intervals are their percentile range).
        seed: Seeds the draws.

    Returns:
        The :class:`Measure` of each name in :data:`MEASURES` that the sample size allows:
        PRDC needs more than ``nearest_k`` images a sample, FD 2 and KID 4; empty when the
        sample size ``equal_sample_size(M, N)`` is below 2.

    Raises:
        DataError: ``draws`` below 1, or the features are not two finite 2-D arrays of one dimension.
    """
    if draws < 1:
        raise DataError(f"draws must be >= 1, got {draws}")
    real = np.asarray(real_features, dtype=np.float64)
    fake = np.asarray(fake_features, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise DataError(f"real_features {real.shape} and fake_features {fake.shape}: need two 2-D arrays (N, D) "
                        "of one dimension; extract both with the same feature model")
    size = equal_sample_size(len(fake), len(real))
    if size < 2:
        return {}
    half = size // 2
    generator = np.random.default_rng(seed)
    values: dict[str, dict[str, list[float]]] = {name: {"generated": [], "real": []} for name in MEASURES}
    for _ in range(draws):
        order = generator.permutation(len(real))
        reference, samples = real[order[size:2 * size]], {"real": real[order[:size]]}
        samples["generated"] = fake if len(fake) == size else fake[generator.choice(len(fake), size, replace=False)]
        halves = generator.permutation(size)[:half], generator.permutation(size)[:half]
        for side, sample in samples.items():
            if size > nearest_k:
                measured = prdc(reference, sample, nearest_k)
                for name in _PRDC:
                    values[name][side].append(getattr(measured, name))
            values["frechet_distance"][side].append(frechet_distance(reference, sample))
            if half >= 2:
                values["kid"][side].append(unbiased_mmd2(reference[halves[0]], sample[halves[1]]))
    return {
        name: Measure(Interval.of(sides["generated"]), Interval.of(sides["real"]),
                      Interval.of(np.subtract(sides["generated"], sides["real"])))
        for name, sides in values.items() if sides["generated"]
    }


# What a gap means, by measure and direction (generated above or below real images).
_MEANINGS = {
    ("precision", 1): "generated images packed in the dense middle of the real data",
    ("precision", -1): "more generated images fall outside the real data than real images do",
    ("recall", 1): "the generated images spread wider than real images (outliers widen their manifold)",
    ("recall", -1): "the generated images span less of the real data than real images do",
    ("density", 1): "generated images crowd the most typical real images",
    ("density", -1): "generated images sit in sparse regions of the real data or off it",
    ("coverage", 1): "the generated images reach more real neighbourhoods than real images do",
    ("coverage", -1): "the generated images miss part of the real variety",
    ("frechet_distance", 1): "the generated features' mean and covariance differ from the real ones "
                             "by more than sampling alone gives",
    ("frechet_distance", -1): "the generated features' statistics are closer to the reference than a real "
                              "sample's",
    ("kid", 1): "the generated distribution differs from the real one",
    ("kid", -1): "the generated sample is closer to the reference than a real sample is",
}


def format_value(name: str, value: float) -> str:
    """``value`` of measure ``name`` as pages show it: KID to 4 decimals (it is small), FD to 2, the rest to 3."""
    return f"{value:.{4 if name == 'kid' else 2 if name == 'frechet_distance' else 3}f}"


def describe_gap(name: str, measure: Measure) -> str | None:
    """A sentence for a gap that sampling does not explain (:attr:`Measure.beyond_real`), else ``None``.

    >>> describe_gap("coverage", measure)  # doctest: +SKIP
    'coverage 0.28 vs 0.37 for real images: the generated images miss part of the real variety'
    """
    if not measure.beyond_real:
        return None
    direction = 1 if measure.difference.mean > 0 else -1
    return (f"{LABELS[name]} {format_value(name, measure.generated.mean)} vs {format_value(name, measure.real.mean)} "
            f"for real images: {_MEANINGS[(name, direction)]}")
