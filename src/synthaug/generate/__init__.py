"""Generate labelled image datasets from text with a text-to-image backend.

:func:`generate_dataset` is the engine; backends live in
:mod:`synthaug.generate.backends` under the ``BACKENDS`` registry.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PromptSpec", "derive_seed", "generate_dataset"]


def __getattr__(name: str) -> Any:
    # The engine pulls in rich and PIL; importing it lazily keeps `import synthaug.generate.backends`
    # light for backend modules.
    if name in __all__:
        from synthaug.generate import engine

        return getattr(engine, name)
    raise AttributeError(name)
