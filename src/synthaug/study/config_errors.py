"""One line per problem of a config pydantic rejected, each naming its key path.

A user fixes every problem in one go rather than meeting them one rerun at a time; the list is
cut after :data:`MAX_LISTED_PROBLEMS` so that a config of the wrong shape does not flood the
terminal.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["MAX_LISTED_PROBLEMS", "problems_message", "validation_message"]


def _format_location(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


#: Problems a config error lists one per line; the rest are counted ("and N more").
MAX_LISTED_PROBLEMS = 8


def _problem_line(detail: Any, model: type[BaseModel]) -> str:
    """One short line naming the key path of one problem pydantic found, and what is wrong."""
    where = _format_location(detail["loc"])
    kind = detail["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, detail["loc"][:-1])
        valid = ", ".join(parent.model_fields) if parent is not None else ""
        message = f"unknown key; valid keys here: {valid}" if valid else "unknown key"
    elif kind == "missing":
        message = "missing required key"
    else:
        message = detail["msg"].removeprefix("Value error, ")
        message = message[0].lower() + message[1:]
        # A model validator names the key it is about ("mix.synthetic_per_class: ..."): it
        # joins the path.
        key, _, rest = message.partition(": ")
        if kind == "value_error" and rest and re.fullmatch(r"[a-z_][a-z_0-9.]*", key):
            where, message = f"{where}.{key}" if detail["loc"] else key, rest
        elif "input" in detail and not isinstance(detail["input"], dict | list):
            message += f" (got {detail['input']!r})"
    return f"{where}: {message}"


def validation_message(error: ValidationError, model: type[BaseModel]) -> str:
    """Every problem pydantic found, one line each with its key path (the first
    :data:`MAX_LISTED_PROBLEMS`, then how many more), so a user fixes them all in one go.

    One problem reads as one line; several as ``N problems:`` and an indented line each.
    """
    return problems_message([_problem_line(detail, model) for detail in error.errors(include_url=False)])


def problems_message(problems: list[str]) -> str:
    """``problems`` as one message: one problem as its line; several (repeats dropped) as
    ``N problems:`` and an indented line each, the first :data:`MAX_LISTED_PROBLEMS`, then how
    many more."""
    lines = list(dict.fromkeys(problems))
    if len(lines) == 1:
        return lines[0]
    listed = [f"  {line}" for line in lines[:MAX_LISTED_PROBLEMS]]
    if len(lines) > MAX_LISTED_PROBLEMS:
        listed.append(f"  and {len(lines) - MAX_LISTED_PROBLEMS} more")
    return "\n".join([f"{len(lines)} problems:", *listed])


def _model_at(model: type[BaseModel], location: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model class found at ``location`` below ``model`` (list indices skipped)."""
    current: Any = model
    for part in location:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if isinstance(current, type) else None
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        for candidate in list(candidates):
            candidates.extend(getattr(candidate, "__args__", ()))
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return None
    return current
