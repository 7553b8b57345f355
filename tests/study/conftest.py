"""Fixtures of the study tests: the tiny study, interrupted once and resumed."""

from __future__ import annotations

from typing import Any

import pytest

from helpers.tiny_study import interrupted_then_resumed_study


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What happened when the tiny study was interrupted after 3 units and rerun."""
    return interrupted_then_resumed_study(tmp_path_factory.getbasetemp())
