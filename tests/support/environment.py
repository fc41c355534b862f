"""Tests without a broker or database server must not see a developer's `WARREN_*` settings."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_warren_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built in a test see only their arguments, not `WARREN_*` of this shell."""
    for name in os.environ:
        upper = name.upper()
        # WARREN_TEST_* name the test database server, for the tests that ask for PostgreSQL
        if upper.startswith("WARREN_") and not upper.startswith("WARREN_TEST_"):
            monkeypatch.delenv(name)
