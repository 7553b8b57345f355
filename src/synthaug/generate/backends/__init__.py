"""Generator backends, chosen by string key.

The registry maps each key to ``"module:Class"`` and imports the module only when the
backend is used, so the optional dependencies of one backend (``openai``, ``diffusers``)
are needed only by those who use it.
"""

from __future__ import annotations

import importlib
from typing import Any

from synthaug.errors import ConfigError
from synthaug.generate.backends.base import (
    PARAM_NAMES,
    GeneratedImage,
    GeneratorBackend,
    ImageRequest,
    InitImage,
    RejectedRequest,
    parse_size,
)
from synthaug.registry import Registry

BACKENDS: Registry[str] = Registry("generator backend")
BACKENDS.register("ddpm")("synthaug.generate.backends.ddpm:DDPMBackend")
BACKENDS.register("diffusers")("synthaug.generate.backends.diffusers_t2i:DiffusersBackend")
BACKENDS.register("openai")("synthaug.generate.backends.openai_images:OpenAIImagesBackend")

# The pip extra that provides each backend's optional dependency.
_EXTRAS = {"openai": "openai", "diffusers": "diffusers"}


def backend_class(key: str) -> type[GeneratorBackend]:
    """Import and return the backend class registered under ``key``.

    Raises:
        ConfigError: Unknown key, or the backend's optional dependency is not installed.
    """
    module_name, class_name = BACKENDS.get(key).split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            raise  # our own module is missing: a packaging bug, keep the traceback
        extra = _EXTRAS.get(key, key)
        raise ConfigError(
            f"backend {key!r} needs the package {error.name!r}; "
            f"install it with: pip install 'synthaug[{extra}]'"
        ) from error
    return getattr(module, class_name)


def make_backend(key: str, model: str | None = None, **options: Any) -> GeneratorBackend:
    """Build the backend registered under ``key`` with ``model`` and backend ``options``."""
    cls = backend_class(key)
    cls.check_options(options)  # before __init__, whose explicit keywords would raise TypeError
    return cls(model=model, **options)


__all__ = [
    "BACKENDS",
    "PARAM_NAMES",
    "GeneratedImage",
    "GeneratorBackend",
    "ImageRequest",
    "InitImage",
    "RejectedRequest",
    "backend_class",
    "make_backend",
    "parse_size",
]
