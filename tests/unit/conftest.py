"""Unit tests need no broker and no database server; they must not see a developer's settings."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from outbox.db import create_engine, create_tables
from outbox.tables import MESSAGING_TABLES


@pytest.fixture(autouse=True)
def _no_warren_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built in a unit test see only their arguments, not `WARREN_*` of this shell."""
    for name in os.environ:
        if name.upper().startswith("WARREN_"):
            monkeypatch.delenv(name)


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    """A throw-away SQLite file."""
    return tmp_path / "orders.db"


@pytest.fixture
async def engine(db_file: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on `db_file` with the outbox, inbox and lease tables."""
    engine = create_engine(f"sqlite+aiosqlite:///{db_file}")
    await create_tables(engine, MESSAGING_TABLES)
    yield engine
    await engine.dispose()
