"""End-to-end fixtures: a vhost per test, so no test sees another's stray messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from config.settings import Settings
from tests.conftest import DEFAULT_BACKENDS, Backend, MakeDatabaseUrl, fresh_vhost
from tests.support.harness import free_port
from tests.support.system import WORKERS, System
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


@dataclass
class Stack:
    """Every worker and the gateway as processes, on one database backend."""

    system: System
    url: str


@pytest.fixture
async def stack(
    e2e_amqp_url: str, backend: Backend, make_database_url: MakeDatabaseUrl, tmp_path: Path
) -> AsyncIterator[Stack]:
    urls = {s: make_database_url(backend) for s in (*WORKERS, "gateway")}
    system = System(e2e_amqp_url, urls, tmp_path)
    try:
        await system.start()
        port = free_port()
        await system.start_gateway(port)
        yield Stack(system, f"http://127.0.0.1:{port}")
    finally:
        system.stop_all()
