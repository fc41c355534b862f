"""The one client of the RabbitMQ management HTTP API, for the ops tools, benchmarks and tests."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

from config.settings import Settings

if TYPE_CHECKING:
    import httpx  # imported on first use: a worker process never needs it

EVERYTHING = {"configure": ".*", "write": ".*", "read": ".*"}


def _q(value: str) -> str:
    return quote(value, safe="")


class Management:
    """Reads (and, for test and benchmark vhosts, creates and deletes) one virtual host."""

    def __init__(
        self,
        settings: Settings,
        vhost: str | None = None,
        *,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        import httpx

        self.vhost = vhost or settings.vhost
        self._settings = settings
        self._owner = client is None
        self._client = client or httpx.AsyncClient(
            base_url=settings.management_url.rstrip("/") + "/api",
            auth=(settings.management_user, settings.management_password.get_secret_value()),
            timeout=timeout_s,
        )

    def on(self, vhost: str) -> Management:
        """The same client, looking at another virtual host."""
        return Management(self._settings, vhost, client=self._client)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client (views made by `on` share it and are closed with it)."""
        if self._owner:
            await self._client.aclose()

    async def _get(self, path: str, **params: Any) -> Any:
        response = await self._client.get(path, params=params or None)
        response.raise_for_status()
        return response.json()

    async def overview(self) -> dict[str, Any]:
        """The broker's overview (versions, totals); `httpx.HTTPError` if it does not answer."""
        return dict(await self._get("/overview"))

    async def nodes(self) -> list[dict[str, Any]]:
        """Every node of the cluster, with its enabled plugins."""
        nodes: list[dict[str, Any]] = await self._get("/nodes")
        return nodes

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

    async def consumers(self) -> list[dict[str, Any]]:
        """Every consumer of the vhost, with its queue and channel."""
        return list(await self._get(f"/consumers/{_q(self.vhost)}"))

    async def consumes(self, queue: str, connection_name: str) -> bool:
        """Whether a connection named `connection_name` (client-given) consumes from `queue`."""
        named = {
            c["name"]
            for c in await self.connections()
            if (c.get("client_properties") or {}).get("connection_name") == connection_name
        }
        return named != set() and any(
            c["queue"]["name"] == queue and c["channel_details"]["connection_name"] in named
            for c in await self.consumers()
        )

    async def exchanges(self) -> list[dict[str, Any]]:
        """Every exchange of the vhost."""
        return list(await self._get(f"/exchanges/{_q(self.vhost)}"))

    async def policies(self) -> list[dict[str, Any]]:
        """Every policy of the vhost, with its pattern and definition."""
        return list(await self._get(f"/policies/{_q(self.vhost)}"))

    async def set_policy(self, name: str, definition: dict[str, Any]) -> None:
        """Create or replace policy `name` of the vhost (pattern, definition, apply-to)."""
        path = f"/policies/{_q(self.vhost)}/{_q(name)}"
        (await self._client.put(path, json=definition)).raise_for_status()

    async def delete_policy(self, name: str) -> None:
        """Remove policy `name` of the vhost; a policy that is not there is no error."""
        response = await self._client.delete(f"/policies/{_q(self.vhost)}/{_q(name)}")
        if response.status_code != 404:
            response.raise_for_status()

    async def bindings(self) -> list[dict[str, Any]]:
        """Every binding of the vhost."""
        return list(await self._get(f"/bindings/{_q(self.vhost)}"))

    async def create_vhost(self, name: str, description: str, users: set[str]) -> None:
        """Create virtual host `name` and grant each of `users` everything on it."""
        put = self._client.put
        (await put(f"/vhosts/{_q(name)}", json={"description": description})).raise_for_status()
        for user in sorted(users):
            (await put(f"/permissions/{_q(name)}/{_q(user)}", json=EVERYTHING)).raise_for_status()

    async def delete_vhost(self, name: str) -> bool:
        """Delete virtual host `name` and everything in it; False if it did not exist."""
        response = await self._client.delete(f"/vhosts/{_q(name)}")
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True
