"""Fixtures of the report tests: the tiny study of ``tests/study`` (run once per session)."""

from __future__ import annotations

from typing import Any

import pytest

from helpers.tiny_study import interrupted_then_resumed_study


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The finished tiny study (see ``tests/helpers/tiny_study.py``)."""
    return interrupted_then_resumed_study(tmp_path_factory.getbasetemp())
