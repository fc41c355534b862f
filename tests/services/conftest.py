"""Each service's own tests need no broker and no database server, and see no `WARREN_*`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Environment, Settings
from outbox.db import create_engine
from tests.support.environment import _no_warren_environment  # noqa: F401 (autouse)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings whose `var` directory is this test's own."""
    return Settings(_env_file=None, env=Environment.TEST, var_dir=tmp_path)


@pytest.fixture
async def service_db(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A fresh SQLite database of the default driver for the service under test."""
    engine = create_engine(f"sqlite+inline:///{tmp_path / 'service.db'}")
    yield engine
    await engine.dispose()
