"""One rate limit shared by every worker that calls the same API account.

A provider's rate limit (images per minute) is per account, not per process: two workers that
each assume the whole limit get rate-limited answers half the time. :class:`RateLimiter` spaces
calls ``1 / rate`` seconds apart by handing out *reservations*: ``reserve()`` books the next free
slot and returns how long the caller must wait for it, so nobody blocks while holding the
limiter and a reservation costs one call.

- In one process (and for each local worker, with its share ``rate / workers`` of the account)
  it is a plain object.
- On Ray, :func:`shared_rate_limiter` starts one actor holding the limiter; every task asks it
  for reservations, so the whole cluster keeps the account's limit however many workers there
  are and however the work is spread.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

__all__ = ["RateLimiter", "Reserver", "shared_rate_limiter"]


class Reserver(Protocol):
    """Anything with ``reserve() -> seconds to wait``: a :class:`RateLimiter` or a Ray actor's proxy."""

    def reserve(self) -> float: ...


class RateLimiter:
    """Spaces events ``1 / rate`` seconds apart (a token bucket holding one token).

    Args:
        per_second: Events allowed per second.

    Raises:
        ValueError: ``per_second`` is not positive.
    """

    def __init__(self, per_second: float) -> None:
        if per_second <= 0:
            raise ValueError(f"a rate limit must be positive, got {per_second}")
        self.per_second = per_second
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Book the next free slot; seconds until it (0 when free now)."""
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
            return slot - now

    def __getstate__(self) -> dict[str, Any]:  # a copy sent to a worker starts afresh
        return {"per_second": self.per_second}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["per_second"])  # type: ignore[misc]


class _RayReserver:
    """The worker side of a shared Ray limiter: forwards ``reserve`` to the actor."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def reserve(self) -> float:
        import ray

        return float(ray.get(self.actor.reserve.remote()))


def shared_rate_limiter(per_second: float) -> Reserver:
    """A limiter every Ray task shares: one actor that hands out the reservations.

    The returned object pickles into tasks (it holds the actor's handle); the actor lives as
    long as the driver holds a reference to it.
    """
    import ray

    actor = ray.remote(num_cpus=0)(RateLimiter).remote(per_second)
    return _RayReserver(actor)
