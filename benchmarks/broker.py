"""Fresh RabbitMQ virtual hosts for a run, and waiting until queues have their consumers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

import aio_pika
import httpx
from aiormq.exceptions import ChannelNotFoundEntity

from benchmarks.processes import Children
from config.settings import Settings
from workers.ops.management import Management


async def create_vhost(settings: Settings, name: str) -> None:
    """Create `name` and grant the broker and management users everything on it."""
    broker_user = unquote(urlsplit(settings.amqp_url()).username or "guest")
    async with Management(settings) as api:
        description = "warren bench (deleted when the run ends)"
        await api.create_vhost(name, description, {settings.management_user, broker_user})


def delete_vhosts(settings: Settings, names: Iterable[str]) -> list[str]:
    """Delete the virtual hosts (and everything in them); what could not be deleted."""
    return asyncio.run(_delete_vhosts(settings, names))


async def _delete_vhosts(settings: Settings, names: Iterable[str]) -> list[str]:
    left: list[str] = []
    async with Management(settings, timeout_s=30) as api:
        for name in names:
            try:
                await api.delete_vhost(name)
            except httpx.HTTPError as exc:
                left.append(f"{name} ({exc})")
    return left


async def broker_versions(settings: Settings) -> dict[str, str]:
    """RabbitMQ and Erlang versions, from the management API."""
    async with Management(settings) as api:
        overview = await api.overview()
    return {"rabbitmq": overview["rabbitmq_version"], "erlang": overview["erlang_version"]}


async def _consumer_counts(url: str, queues: Iterable[str]) -> dict[str, int]:
    connection = await aio_pika.connect(url, timeout=5)
    counts: dict[str, int] = {}
    try:
        for name in queues:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
                counts[name] = queue.declaration_result.consumer_count or 0
                await channel.close()
            except ChannelNotFoundEntity:
                counts[name] = 0  # not declared yet; the broker closed the channel
    finally:
        await connection.close()
    return counts


async def wait_for_consumers(
    url: str, queues: Iterable[str], children: Children, timeout_s: float = 90
) -> None:
    """Wait until every queue has a consumer (a passive declare counts them, no stats lag)."""
    wanted, deadline = tuple(queues), time.monotonic() + timeout_s
    while True:
        children.check()
        counts = await _consumer_counts(url, wanted)
        missing = [name for name, count in counts.items() if count == 0]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no consumer after {timeout_s:g}s on: {', '.join(missing)}")
        await asyncio.sleep(0.25)
