"""Fixtures of the generation tests.

Every registered backend is checked by ``test_backend_contract.py`` through the
``backend_factory`` fixture, which looks up a fixture named ``<key>_backend_case`` (with
``-`` replaced by ``_``) returning a :class:`BackendCase`. A new backend adds its case
fixture here; a registered backend without one fails the contract test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synthaug.generate.backends import BACKENDS, GeneratorBackend, make_backend

from helpers.fake_openai_server import FAST_RETRIES, FakeImagesServer


@dataclass
class BackendCase:
    """How the contract test builds and drives one backend.

    Attributes:
        make: Builds a fresh backend (tiny and fast).
        params: Valid generation parameters, including ``size`` ('WIDTHxHEIGHT').
        classes: Labels the backend can draw (a class-conditional model knows only its own).
        deterministic: Whether the same seed gives the same image (local backends).
    """

    make: Callable[[], GeneratorBackend]
    params: dict[str, Any]
    classes: list[str]
    deterministic: bool


@pytest.fixture
def openai_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeImagesServer]:
    """A running fake Images API server, with ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` pointing at it."""
    with FakeImagesServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


# Fast retries so that scripted failures do not slow the tests down.


@pytest.fixture
def openai_backend_case(openai_server: FakeImagesServer) -> BackendCase:
    return BackendCase(
        make=lambda: make_backend("openai", "dall-e-2", concurrency=4, **FAST_RETRIES),
        params={"size": "256x256"},
        classes=["T-shirt/top", "Trouser"],
        deterministic=False,
    )


@pytest.fixture(params=BACKENDS.keys())
def backend_factory(request: pytest.FixtureRequest) -> tuple[str, BackendCase]:
    """``(key, case)`` for every registered backend."""
    key = request.param
    fixture_name = f"{key.replace('-', '_')}_backend_case"
    try:
        case = request.getfixturevalue(fixture_name)
    except pytest.FixtureLookupError:
        pytest.fail(f"backend {key!r} is registered but tests/generate/conftest.py has no {fixture_name} fixture")
    return key, case


# --- ddpm and diffusers backends -------------------------------------------------------


@pytest.fixture
def ddpm_backend_case() -> BackendCase:
    """The shipped Fashion-MNIST generator (28x28 grayscale), at its default settings."""
    return BackendCase(
        make=lambda: make_backend("ddpm"),
        params={"size": "28x28"},
        classes=["T-shirt/top", "Trouser"],
        deterministic=True,
    )


@pytest.fixture(scope="session")
def tiny_diffusers_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of a tiny random Stable Diffusion pipeline saved with ``save_pretrained`` (built once)."""
    pytest.importorskip("diffusers")
    from helpers.tiny_diffusers import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-stable-diffusion"))


@pytest.fixture
def diffusers_backend_case(tiny_diffusers_pipeline: Path) -> BackendCase:
    return BackendCase(
        make=lambda: make_backend("diffusers", str(tiny_diffusers_pipeline), batch_size=2),
        params={"size": "16x16", "steps": 2},
        classes=["a cat", "a dog"],
        deterministic=True,
    )
