"""End-to-end fixtures: a vhost per test, so no test sees another's stray messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from config.settings import Settings
from tests.conftest import DEFAULT_BACKENDS, Backend, fresh_vhost
from workers.ops.management import Management


@pytest.fixture(params=DEFAULT_BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """The default SQLite driver and PostgreSQL: a whole system per backend is slow to start."""
    chosen: Backend = request.param
    return chosen


@pytest.fixture
async def e2e_amqp_url(
    request: pytest.FixtureRequest, management: Management, base_settings: Settings
) -> AsyncIterator[str]:
    """The broker URL of a vhost made for this one test."""
    async with fresh_vhost(management, base_settings, request.node.name) as name:
        yield base_settings.amqp_url(name)
