"""How numbers are written in the summary, the headline and the report (one place, one style).

Intervals are :class:`~synthaug.study.stats.Interval` (a mean over seeds) or
:class:`~synthaug.study.records.BootstrapInterval` (a point over test examples); a ``nan`` end
(a single seed) prints the value alone.
"""

from __future__ import annotations

import math

from synthaug.study.records import BootstrapInterval, GroupKey
from synthaug.study.stats import Interval

__all__ = ["interval_percent", "interval_plain", "interval_points", "size_text", "training_data_text"]


def _center(interval: Interval | BootstrapInterval) -> float:
    return interval.point if isinstance(interval, BootstrapInterval) else interval.mean


def interval_percent(interval: Interval | None, unit: str = " %") -> str:
    """``"89.1 ± 0.4 %"``: a fraction as percent, ± the interval's half-width."""
    if interval is None:
        return "–"
    if math.isnan(interval.low):
        return f"{100 * interval.mean:.1f}{unit}"
    return f"{100 * interval.mean:.1f} ± {100 * (interval.high - interval.low) / 2:.1f}{unit}"


def interval_plain(interval: Interval | None, digits: int = 3) -> str:
    """``"0.412 ± 0.015"``: a value ± the interval's half-width."""
    if interval is None:
        return "–"
    if math.isnan(interval.low):
        return f"{interval.mean:.{digits}f}"
    return f"{interval.mean:.{digits}f} ± {(interval.high - interval.low) / 2:.{digits}f}"


def interval_points(interval: Interval | BootstrapInterval) -> str:
    """``"+3.2 [+1.0, +5.4]"``: a difference of fractions in percentage points with its interval."""
    value = _center(interval)
    if math.isnan(interval.low):
        return f"{100 * value:+.1f} (one seed)"
    return f"{100 * value:+.1f} [{100 * interval.low:+.1f}, {100 * interval.high:+.1f}]"


def size_text(value: float) -> str:
    """Images per class: whole numbers from 10 up, one decimal below, "not reached" for inf."""
    if math.isinf(value):
        return "not reached"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def training_data_text(key: GroupKey, synthetic_name: str = "synthetic") -> str:
    """What a group trained on: ``"3 real + 10 synthetic (audit-weighted)"``.

    Args:
        key: The group.
        synthetic_name: How synthetic images are called (``"synthetic"``, or the source's name).
    """
    if key.data == "mixed":
        text = f"{key.real_per_class} real + {key.synthetic_per_class} {synthetic_name}"
    else:
        text = f"{key.size} {key.data if key.data == 'real' else synthetic_name}"
    # Filtered, audit-weighted and robust-loss regimes say what they changed.
    return f"{text} ({key.treatment})" if key.treatment else text
