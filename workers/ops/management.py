"""A small client of the RabbitMQ management HTTP API, for the ops tools and the tests."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from config.settings import Settings


def _q(value: str) -> str:
    return quote(value, safe="")


class Management:
    """Reads queues, exchanges and bindings of one virtual host."""

    def __init__(self, settings: Settings, vhost: str | None = None) -> None:
        self.vhost = vhost or settings.vhost
        self._client = httpx.AsyncClient(
            base_url=settings.management_url.rstrip("/") + "/api",
            auth=(settings.management_user, settings.management_password.get_secret_value()),
            timeout=10.0,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.aclose()

    async def _get(self, path: str, **params: Any) -> Any:
        response = await self._client.get(path, params=params or None)
        response.raise_for_status()
        return response.json()

    async def queues(self) -> list[dict[str, Any]]:
        """Every queue of the vhost, with arguments, policy and counts."""
        return list(await self._get(f"/queues/{_q(self.vhost)}"))

    async def queue(self, name: str) -> dict[str, Any] | None:
        """One queue, or None if it does not exist."""
        response = await self._client.get(f"/queues/{_q(self.vhost)}/{_q(name)}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())

    async def connections(self) -> list[dict[str, Any]]:
        """Every client connection of the vhost, with its name."""
        return [c for c in await self._get("/connections") if c.get("vhost") == self.vhost]

    async def exchanges(self) -> list[dict[str, Any]]:
        """Every exchange of the vhost."""
        return list(await self._get(f"/exchanges/{_q(self.vhost)}"))

    async def policies(self) -> list[dict[str, Any]]:
        """Every policy of the vhost, with its pattern and definition."""
        return list(await self._get(f"/policies/{_q(self.vhost)}"))

    async def bindings(self) -> list[dict[str, Any]]:
        """Every binding of the vhost."""
        return list(await self._get(f"/bindings/{_q(self.vhost)}"))
