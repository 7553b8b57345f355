"""Fixtures of the study tests: the tiny study, interrupted once and resumed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

# Tests run with --import-mode=importlib, which leaves sys.path alone; the helper module
# beside this file is made importable here (tests/report does the same).
sys.path.insert(0, str(Path(__file__).parent))
from tiny_study import interrupted_then_resumed_study  # noqa: E402


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What happened when the tiny study was interrupted after 3 units and rerun."""
    return interrupted_then_resumed_study(tmp_path_factory.getbasetemp())
