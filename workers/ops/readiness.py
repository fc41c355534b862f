"""Readiness probes for supervised processes: what the broker or the HTTP port says, never logs.

A probe takes the child's pid and answers whether it is ready. A worker is ready when the broker
shows a consumer on its queue over a connection named after the child (`orders-worker@host:pid`,
see `outbox.amqp.connection_name`); the gateway when its `/readyz` answers 200.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from config.settings import Settings
from outbox.amqp import connection_name
from workers.ops.management import Management
from workers.runtime.discovery import service as declared

Probe = Callable[[int], Awaitable[bool]]


def consumer_probe(settings: Settings, queue: str, role: str) -> Probe:
    """Ready when the child (connection `role@host:pid`) consumes `queue` in the settings' vhost."""

    async def consumes(pid: int) -> bool:
        async with Management(settings) as api:
            return await api.consumes(queue, connection_name(role, pid))

    return consumes


def worker_probe(settings: Settings, service: str) -> Probe:
    """Ready when the worker of `service` consumes its work queue."""
    return consumer_probe(settings, declared(service).queue, f"{service}-worker")


def http_probe(url: str) -> Probe:
    """Ready when `url` answers 200."""

    async def answers(pid: int) -> bool:
        import httpx  # only the supervisor probes: not imported by a worker process

        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                return (await client.get(url)).status_code == 200
        except httpx.TransportError:  # not listening yet
            return False

    return answers


def all_of(*probes: Probe) -> Probe:
    """Ready when every probe says so, asked in order."""

    async def every(pid: int) -> bool:
        for probe in probes:
            if not await probe(pid):
                return False
        return True

    return every
