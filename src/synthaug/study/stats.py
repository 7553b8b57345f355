"""Statistics over a study's runs: intervals over seeds, paired differences, learning curves
and the exchange rate between synthetic and real images.

Conventions:

- An interval over seeds is Student's t-interval of the mean, ``mean ± t(0.975, n-1) · s/√n``
  with ``s`` the sample standard deviation (``ddof=1``); with a single seed it is undefined
  (``nan``) rather than pretending to be exact.
- A paired comparison differences two groups seed by seed (same seed, same subsample draw
  where the regimes share one) and takes the t-interval of those differences.
- A learning curve is the mean over seeds at each size, made monotone non-decreasing by
  isotonic regression (pool-adjacent-violators), because "images needed to reach an accuracy"
  is only defined on a monotone curve; it is interpolated piecewise linearly in log-size.
- The exchange rate at ``n`` real images per class is ``m / n``, where ``m`` synthetic images
  per class reach the mean real-only accuracy at ``n``. Its interval comes from a bootstrap
  over seeds (seeds of each curve resampled independently); an end beyond the largest
  synthetic size is reported as "not reached" (``inf``).

References:
    He, R., Sun, S., Yu, X., Xue, C., Zhang, W., Torr, P., Bai, S., & Qi, X. (2023). Is
    synthetic data from generative models ready for image recognition? ICLR. (They report
    that about five synthetic images are worth one real image on CIFAR-100.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np

__all__ = [
    "ExchangeRate",
    "paired_bootstrap_difference",
    "Interval",
    "SizeMatch",
    "exchange_rate",
    "monotone_curve",
    "paired_difference",
    "size_to_match",
    "t_interval",
]


@dataclass(frozen=True)
class Interval:
    """A mean with its 95 % interval over ``n`` values (``low``/``high`` are nan when n < 2)."""

    mean: float
    low: float
    high: float
    std: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        """Plain data for JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Interval:
        """Inverse of :meth:`to_dict`."""
        return cls(float(data["mean"]), float(data["low"]), float(data["high"]), float(data["std"]), int(data["n"]))


def t_interval(
    values: Sequence[float] | np.ndarray, confidence: float = 0.95, bounds: tuple[float, float] | None = None
) -> Interval:
    """Mean and Student's t confidence interval of the mean.

    Args:
        values: One value per seed, shape ``(n,)``; nan values are dropped.
        confidence: Coverage of the interval.
        bounds: The range the quantity can take (``(0, 1)`` for an accuracy or an AUROC): the
            interval is clipped to it. With three seeds that disagree, ``mean ± t s / sqrt(n)``
            runs past it (an AUROC of 0.46 [-0.21, 1.13]), which no reader can use; clipped,
            it says the same — nothing is known — in the metric's own terms.

    Returns:
        The :class:`Interval`; ``low``/``high``/``std`` are nan when fewer than two values.
    """
    array = np.asarray(values, dtype=np.float64)
    array = array[~np.isnan(array)]
    n = int(array.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(array.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, math.nan, n)
    std = float(array.std(ddof=1))
    from scipy import stats as scipy_stats  # here: scipy is slow to import (CLI start-up)

    half_width = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * std / math.sqrt(n)
    low, high = mean - half_width, mean + half_width
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Interval(mean, low, high, std, n)


def paired_difference(
    treatment: Mapping[int, float], baseline: Mapping[int, float], confidence: float = 0.95
) -> Interval:
    """Mean difference ``treatment - baseline`` over the seeds both have, with its t-interval.

    Args:
        treatment: Value per seed of the group of interest (e.g. mixed data).
        baseline: Value per seed of the reference group (e.g. real only).
    """
    seeds = sorted(set(treatment) & set(baseline))
    return t_interval([treatment[seed] - baseline[seed] for seed in seeds], confidence)


def paired_bootstrap_difference(
    treatment: np.ndarray, baseline: np.ndarray, resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Percentile bootstrap over test examples of a difference of per-example means.

    Both groups are scored on the same test examples, so the examples are resampled jointly
    (a paired bootstrap): with ``d_i = mean_s treatment[s, i] - mean_s baseline[s, i]`` the
    statistic is ``mean_i d_i``, e.g. the difference in accuracy when the rows hold
    per-example correctness (0/1) of each seed's model.

    Written here rather than with :func:`synthaug.metrics.bootstrap_ci` because that one
    resamples whole ``(S, N, C)`` probability arrays one resample at a time; a mean of
    per-example values resamples as one index matrix, which keeps dozens of comparisons
    to well under a second.

    Args:
        treatment: ``(seeds, N)`` per-example values of the treatment group.
        baseline: ``(seeds', N)`` per-example values of the baseline group.
        resamples: Bootstrap resamples.
        confidence: Coverage of the interval.
        seed: Seed of the resampling.

    Returns:
        ``(point, low, high)``.
    """
    differences = np.asarray(treatment, dtype=np.float64).mean(axis=0) - np.asarray(baseline, dtype=np.float64).mean(
        axis=0
    )
    n = differences.shape[0]
    rng = np.random.default_rng(seed)
    statistics = np.concatenate(
        [
            differences[rng.integers(0, n, size=(min(100, resamples - start), n))].mean(axis=1)
            for start in range(0, resamples, 100)
        ]
    )
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(statistics, [tail, 1.0 - tail])
    return float(differences.mean()), float(low), float(high)


def monotone_curve(sizes: Sequence[float], values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Sort a learning curve by size and make it non-decreasing (isotonic regression).

    Args:
        sizes: Images per class, shape ``(K,)``.
        values: Mean accuracy at each size, shape ``(K,)``.

    Returns:
        ``(sizes, fitted)`` sorted by size; ``fitted`` is the closest non-decreasing curve in
        least squares (adjacent violators are pooled to their mean).
    """
    order = np.argsort(np.asarray(sizes, dtype=np.float64))
    x = np.asarray(sizes, dtype=np.float64)[order]
    y = np.asarray(values, dtype=np.float64)[order]
    from sklearn.isotonic import IsotonicRegression  # here: scikit-learn is slow to import

    fitted = IsotonicRegression(increasing=True).fit_transform(np.log(x), y)
    return x, np.asarray(fitted, dtype=np.float64)


@dataclass(frozen=True)
class SizeMatch:
    """Images per class at which a learning curve reaches a target value.

    ``status`` is ``"interpolated"`` (``size`` inside the measured range),
    ``"at_or_below"`` (already reached at the smallest measured size, so ``size`` is an upper
    bound) or ``"not_reached"`` (above the curve's best; ``size`` is ``inf``).
    """

    size: float
    status: Literal["interpolated", "at_or_below", "not_reached"]


def size_to_match(sizes: Sequence[float], values: Sequence[float], target: float) -> SizeMatch:
    """Invert a learning curve: the images per class at which it reaches ``target``.

    The curve is made monotone (:func:`monotone_curve`) and interpolated linearly in
    ``log(size)``; the first crossing is returned.

    Args:
        sizes: Images per class, shape ``(K,)``.
        values: Mean metric (higher is better) at each size, shape ``(K,)``.
        target: The value to reach.
    """
    x, y = monotone_curve(sizes, values)
    if target <= y[0]:
        return SizeMatch(float(x[0]), "at_or_below")
    if target > y[-1]:
        return SizeMatch(math.inf, "not_reached")
    upper = int(np.argmax(y >= target))  # first size at or above the target; >= 1 here
    lower = upper - 1
    fraction = (target - y[lower]) / (y[upper] - y[lower])
    log_size = math.log(x[lower]) + fraction * (math.log(x[upper]) - math.log(x[lower]))
    return SizeMatch(math.exp(log_size), "interpolated")


@dataclass(frozen=True)
class ExchangeRate:
    """How many synthetic images per class match ``real_per_class`` real ones.

    Attributes:
        real_per_class: Real images per class ``n``.
        real_accuracy: Mean real-only accuracy at ``n`` (the target).
        synthetic_per_class: ``m``, images per class on the mean synthetic curve that reach the
            target (``inf`` when not reached, the smallest size when reached at or below it).
        status: See :class:`SizeMatch`.
        rate: ``m / n`` synthetic images per real image.
        rate_low: 2.5th percentile of the seed bootstrap of ``rate``.
        rate_high: 97.5th percentile (``inf`` when more than 2.5 % of resamples never reach).
        not_reached_fraction: Share of bootstrap resamples in which synthetic data never
            reaches the target.
    """

    real_per_class: int
    real_accuracy: float
    synthetic_per_class: float
    status: str
    rate: float
    rate_low: float
    rate_high: float
    not_reached_fraction: float

    def to_dict(self) -> dict[str, float | int | str]:
        """Plain data (``inf`` stays a float; :func:`synthaug.fileio.to_json_value` writes it
        as ``"inf"``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExchangeRate:
        """Inverse of :meth:`to_dict` (extra keys of a larger row are ignored)."""
        return cls(**{field.name: data[field.name] for field in fields(cls)})


def _curve_means(
    curve: Mapping[int, Mapping[int, float]], seeds_by_size: Mapping[int, Sequence[int]]
) -> tuple[list[int], list[float]]:
    sizes = sorted(curve)
    return sizes, [float(np.mean([curve[size][seed] for seed in seeds_by_size[size]])) for size in sizes]


def exchange_rate(
    real_curve: Mapping[int, Mapping[int, float]],
    synthetic_curve: Mapping[int, Mapping[int, float]],
    real_per_class: int,
    resamples: int = 1000,
    seed: int = 0,
) -> ExchangeRate:
    """The exchange rate of synthetic for real images at ``real_per_class``.

    Args:
        real_curve: ``{images per class: {seed: accuracy}}`` of the real-only regime; must
            contain ``real_per_class``.
        synthetic_curve: The same for the synthetic-only regime.
        real_per_class: ``n``.
        resamples: Bootstrap resamples over seeds.
        seed: Seed of the bootstrap.

    Returns:
        The :class:`ExchangeRate`.
    """
    all_real = {size: sorted(values) for size, values in real_curve.items()}
    all_synthetic = {size: sorted(values) for size, values in synthetic_curve.items()}
    target = float(np.mean([real_curve[real_per_class][s] for s in all_real[real_per_class]]))
    sizes, means = _curve_means(synthetic_curve, all_synthetic)
    point = size_to_match(sizes, means, target)

    rng = np.random.default_rng(seed)
    rates = np.empty(resamples)
    for index in range(resamples):
        real_seeds = all_real[real_per_class]
        drawn = rng.choice(real_seeds, size=len(real_seeds), replace=True)
        drawn_target = float(np.mean([real_curve[real_per_class][s] for s in drawn]))
        drawn_seeds = {size: rng.choice(seeds, size=len(seeds), replace=True) for size, seeds in all_synthetic.items()}
        drawn_sizes, drawn_means = _curve_means(synthetic_curve, drawn_seeds)
        rates[index] = size_to_match(drawn_sizes, drawn_means, drawn_target).size / real_per_class
    # inverted_cdf picks observed values, so an infinite ("not reached") end stays inf, not nan.
    low, high = np.quantile(rates, [0.025, 0.975], method="inverted_cdf")
    return ExchangeRate(
        real_per_class=real_per_class,
        real_accuracy=target,
        synthetic_per_class=point.size,
        status=point.status,
        rate=point.size / real_per_class,
        rate_low=float(low),
        rate_high=float(high),
        not_reached_fraction=float(np.mean(np.isinf(rates))),
    )
