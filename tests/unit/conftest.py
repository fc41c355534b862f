"""Unit tests need no broker and no database server; they must not see a developer's settings."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_warren_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built in a unit test see only their arguments, not `WARREN_*` of this shell."""
    for name in os.environ:
        if name.upper().startswith("WARREN_"):
            monkeypatch.delenv(name)
