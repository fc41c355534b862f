"""Unit tests need no broker and no database server; they must not see a developer's settings.

A test module that proves a database guarantee (the unit of work) may ask for PostgreSQL too by
overriding `backend` with `BACKENDS`.
"""

from __future__ import annotations

import pytest

from tests.conftest import SQLITE_BACKENDS, Backend
from tests.support.environment import _no_warren_environment  # noqa: F401 (autouse)


@pytest.fixture(params=SQLITE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Both SQLite drivers in turn (`sqlite+inline://`, `sqlite+aiosqlite://`); no server."""
    chosen: Backend = request.param
    return chosen
