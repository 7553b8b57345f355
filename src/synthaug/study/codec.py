"""One codec for the study's records: plain JSON data out, typed records back in.

A record (:class:`Record`) is a frozen dataclass; :meth:`Record.to_dict` writes one key per
field (nested records as their own dicts, mapping keys as strings, as JSON keys must be) and
:meth:`Record.from_dict` reads them back by walking the fields' type hints
(``list[Interval]``, ``dict[int, float]``, ``X | None``, nested records, ``Literal``). The
reading side is tolerant in the two ways files need: keys a record does not know are ignored
(a file written by a newer synthaug reads), and a field that may be ``None`` or has a default
may be absent (a file written before the field existed reads).

A record whose file layout is not one key per field (a results row that flattens its group
key, say) writes its own ``to_dict``/``from_dict`` on top of these.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

__all__ = ["Record", "record_from_dict", "record_to_dict"]

R = TypeVar("R")


class Record:
    """Mixin of a frozen dataclass saved as one JSON object (see the module docstring)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data, one key per field (a ``None`` field whose default is ``None`` is left out)."""
        return record_to_dict(self)

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        """The record from :meth:`to_dict`'s output (or an older or newer file's)."""
        return record_from_dict(cls, data)


def record_to_dict(record: Any) -> dict[str, Any]:
    """``record``'s fields as plain data."""
    data = {}
    for item in dataclasses.fields(record):
        value = getattr(record, item.name)
        if not item.init or (value is None and item.default is None):
            continue
        data[item.name] = _plain(value)
    return data


def _plain(value: Any) -> Any:
    if hasattr(value, "to_dict") and not isinstance(value, type):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {key if isinstance(key, str) else str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def record_from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
    """A ``cls`` record from plain ``data`` (unknown keys ignored; optional keys may be absent).

    Raises:
        KeyError: A required key is missing.
        TypeError, ValueError: A value has the wrong type.
    """
    hints = _hints(cls)
    values = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not item.init:
            continue
        if item.name in data:
            values[item.name] = _decode(hints[item.name], data[item.name])
        elif item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            if type(None) not in typing.get_args(hints[item.name]):
                raise KeyError(item.name)
            values[item.name] = None
    return cls(**values)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(hint: Any, raw: Any) -> Any:
    """``raw`` (plain JSON data) as the type ``hint`` says."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if raw is None or hint is Any or origin is Literal:
        return raw
    if origin is Union or origin is types.UnionType:
        options = [arg for arg in args if arg is not type(None)]
        return _decode(options[0], raw) if len(options) == 1 else raw
    if origin is list:
        return [_decode(args[0], item) for item in raw]
    if origin is dict:
        return {_decode(args[0], key): _decode(args[1], item) for key, item in raw.items()}
    if isinstance(hint, type) and hasattr(hint, "from_dict"):
        return hint.from_dict(raw)
    if hint in (int, float, str, bool):
        return hint(raw)
    return raw
