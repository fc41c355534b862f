"""Fresh RabbitMQ virtual hosts for a run, and waiting until queues have their consumers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

import aio_pika
import httpx
from aiormq.exceptions import ChannelNotFoundEntity

from benchmarks.processes import Children
from config.settings import Settings


def _base_url(settings: Settings) -> str:
    return settings.management_url.rstrip("/") + "/api"


def _auth(settings: Settings) -> tuple[str, str]:
    return settings.management_user, settings.management_password.get_secret_value()


def _api(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=_base_url(settings), auth=_auth(settings), timeout=10)


async def create_vhost(settings: Settings, name: str) -> None:
    """Create `name` and grant the broker and management users everything on it."""
    vhost = quote(name, safe="")
    broker_user = unquote(urlsplit(settings.amqp_url()).username or "guest")
    async with _api(settings) as api:
        description = {"description": "warren bench (deleted when the run ends)"}
        (await api.put(f"/vhosts/{vhost}", json=description)).raise_for_status()
        for user in sorted({settings.management_user, broker_user}):
            everything = {"configure": ".*", "write": ".*", "read": ".*"}
            path = f"/permissions/{vhost}/{quote(user, safe='')}"
            (await api.put(path, json=everything)).raise_for_status()


def delete_vhosts(settings: Settings, names: Iterable[str]) -> list[str]:
    """Delete the virtual hosts (and everything in them); what could not be deleted."""
    left: list[str] = []
    with httpx.Client(base_url=_base_url(settings), auth=_auth(settings), timeout=30) as api:
        for name in names:
            try:
                response = api.delete(f"/vhosts/{quote(name, safe='')}")
                if response.status_code not in (204, 404):
                    left.append(f"{name} (HTTP {response.status_code})")
            except httpx.HTTPError as exc:
                left.append(f"{name} ({exc})")
    return left


async def broker_versions(settings: Settings) -> dict[str, str]:
    """RabbitMQ and Erlang versions, from the management API."""
    async with _api(settings) as api:
        overview = (await api.get("/overview")).raise_for_status().json()
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
