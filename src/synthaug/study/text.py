"""How numbers are written in the summary, the headline and the report (one place, one style).

Intervals are dicts with ``mean`` (or ``point``), ``low`` and ``high``, as saved in
``analysis.json``; a ``nan`` end (a single seed) prints the value alone.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["interval_percent", "interval_plain", "interval_points", "size_text"]


def _has_interval(interval: dict[str, Any]) -> bool:
    low = interval["low"]
    return not (isinstance(low, float) and math.isnan(low))


def interval_percent(interval: dict[str, Any] | None, unit: str = " %") -> str:
    """``"89.1 ± 0.4 %"``: a fraction as percent, ± the interval's half-width."""
    if not interval:
        return "–"
    mean = interval["mean"]
    if not _has_interval(interval):
        return f"{100 * mean:.1f}{unit}"
    return f"{100 * mean:.1f} ± {100 * (interval['high'] - interval['low']) / 2:.1f}{unit}"


def interval_plain(interval: dict[str, Any] | None, digits: int = 3) -> str:
    """``"0.412 ± 0.015"``: a value ± the interval's half-width."""
    if not interval:
        return "–"
    mean = interval["mean"]
    if not _has_interval(interval):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(interval['high'] - interval['low']) / 2:.{digits}f}"


def interval_points(interval: dict[str, Any]) -> str:
    """``"+3.2 [+1.0, +5.4]"``: a difference of fractions in percentage points with its interval."""
    value = interval.get("mean", interval.get("point"))
    if not _has_interval(interval):
        return f"{100 * value:+.1f} (one seed)"
    return f"{100 * value:+.1f} [{100 * interval['low']:+.1f}, {100 * interval['high']:+.1f}]"


def size_text(value: float) -> str:
    """Images per class: whole numbers from 10 up, one decimal below, "not reached" for inf."""
    if math.isinf(value):
        return "not reached"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"
