"""Fixtures of the report tests: the tiny study of ``tests/study`` (run once per session)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "study"))
from tiny_study import interrupted_then_resumed_study  # noqa: E402


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The finished tiny study (see ``tests/study/tiny_study.py``)."""
    return interrupted_then_resumed_study(tmp_path_factory.getbasetemp())
