"""Fresh RabbitMQ virtual hosts for a run, made and deleted through the management API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

import httpx

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
