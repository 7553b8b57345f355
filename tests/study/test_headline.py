"""The headline's exchange-rate lines: one per rate, the unreached sizes of a curve on one line."""

from __future__ import annotations

import math

from synthaug.study.analysis_records import ExchangeRateRow
from synthaug.study.headline import exchange_rate_facts
from synthaug.study.stats import ExchangeRate


def _rate(
    n: int, accuracy: float, status: str, real_regime: str | None = None, rate: float = math.inf
) -> ExchangeRateRow:
    estimate = ExchangeRate(
        real_per_class=n, real_accuracy=accuracy, synthetic_per_class=rate * n, status=status, rate=rate,
        rate_low=rate / 2, rate_high=2 * rate, not_reached_fraction=1.0 if status == "not_reached" else 0.0,
    )  # fmt: skip
    return ExchangeRateRow("synthetic", "ddpm", "cnn", "deterministic", 80, estimate, real_regime=real_regime)


def test_unreached_sizes_of_one_real_curve_share_a_line_in_order() -> None:
    rates = [
        _rate(10, 0.744, "not_reached"),
        _rate(30, 0.791, "not_reached"),
        _rate(80, 0.824, "not_reached"),
        _rate(10, 0.747, "not_reached", real_regime="real+mixup"),
        _rate(30, 0.794, "not_reached", real_regime="real+mixup"),
    ]
    assert exchange_rate_facts(rates) == [
        "Exchange rate at 10, 30 and 80 real images per class: not reached — 80 synthetic images per class stay "
        "below 74.4, 79.1 and 82.4 % respectively.",
        "Exchange rate at 10 and 30 real images per class augmented (real+mixup): not reached — 80 synthetic "
        "images per class stay below 74.7 and 79.4 % respectively.",
    ]


def test_reached_sizes_keep_a_line_each_and_a_single_unreached_size_reads_as_before() -> None:
    rates = [_rate(10, 0.70, "interpolated", rate=4.0), _rate(30, 0.80, "not_reached"),
             _rate(3, 0.60, "at_or_below", rate=1.0)]  # fmt: skip
    assert exchange_rate_facts(rates) == [
        "Exchange rate at 10 real images per class: 4.0 synthetic per real (40 synthetic images per class; "
        "95 % interval 2.0 – 8.0).",
        "Exchange rate at 30 real images per class: not reached — 80 synthetic images per class stay below 80.0 %.",
        "Exchange rate at 3 real images per class: ≤ 1.0 synthetic per real (≤ 3.0 synthetic images per class; "
        "95 % interval 0.5 – 2.0).",
    ]
