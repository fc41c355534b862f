"""Unit tests need no broker and no database server; they must not see a developer's settings.

A test module that proves a database guarantee (the unit of work) may ask for PostgreSQL too by
overriding `backend` with `BACKENDS`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from outbox.db import create_engine, create_tables
from outbox.tables import MESSAGING_TABLES
from tests.conftest import SQLITE_BACKENDS, Backend
from tests.support.environment import _no_warren_environment  # noqa: F401 (autouse)


@pytest.fixture(params=SQLITE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Both SQLite drivers in turn (`sqlite+inline://`, `sqlite+aiosqlite://`); no server."""
    chosen: Backend = request.param
    return chosen


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh `database_url` with the outbox, inbox and lease tables."""
    engine = create_engine(database_url)
    await create_tables(engine, MESSAGING_TABLES)
    yield engine
    await engine.dispose()
