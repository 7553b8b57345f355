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
        return max(0.0, self.reserve_at() - time.time())

    def reserve_at(self) -> float:
        """Book the next free slot; its wall-clock time (``time.time()`` seconds).

        What a caller in another process needs: a delay would start counting only when the
        answer arrives, so the time the answer spends in transit (tens of milliseconds on a
        loaded Ray node) would be added to one wait and not the next, and two calls could
        reach the API closer together than ``1 / rate``. The wall clock, unlike
        ``time.monotonic``, is shared by the processes of a machine (and kept within
        milliseconds across NTP-synchronised nodes).
        """
        with self._lock:
            now = time.time()
            slot = max(self._next, now)
            self._next = slot + self.interval
            return slot

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

        slot = float(ray.get(self.actor.reserve_at.remote()))
        return max(0.0, slot - time.time())


def shared_rate_limiter(per_second: float) -> Reserver:
    """A limiter every Ray task shares: one actor that hands out the reservations.

    The returned object pickles into tasks (it holds the actor's handle); the actor lives as
    long as the driver holds a reference to it.
    """
    import ray

    actor = ray.remote(num_cpus=0)(RateLimiter).remote(per_second)
    return _RayReserver(actor)
