"""A tiny string-keyed registry, so implementations are chosen by name.

Used for uncertainty methods (``synthaug.methods``), backbones (``synthaug.models``) and
generator backends (``synthaug.generate.backends``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from synthaug.errors import ConfigError

T = TypeVar("T")


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'learning_rate'?)`` when ``name`` is a near miss of a valid name, else ``""``."""
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Registry(Generic[T]):
    """Maps string keys to classes or factories.

    Args:
        kind: What is registered, used in error messages (e.g. ``"method"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, key: str) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``key``."""

        def decorator(obj: T) -> T:
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = obj
            return obj

        return decorator

    def get(self, key: str) -> T:
        """Return the entry for ``key`` or raise a :class:`ConfigError` listing valid keys."""
        try:
            return self._entries[key]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise ConfigError(f"unknown {self.kind} {key!r}{did_you_mean(key, self._entries)}; "
                              f"choose one of: {known}") from None

    def keys(self) -> list[str]:
        """Registered keys, sorted."""
        return sorted(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        """The registered keys, sorted (as :meth:`keys`)."""
        return iter(self.keys())
