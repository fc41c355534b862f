"""Users and keys through the gateway's HTTP API, as a client would manage them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


def api_client(url: str, key: str) -> httpx.AsyncClient:
    """A client of the gateway at `url` with an API key."""
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=40)


def email() -> str:
    """An email no other test uses."""
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


async def create_user(operator: httpx.AsyncClient, address: str | None = None) -> dict[str, Any]:
    """A user created by an operator, once the accounts service settled it (ACTIVE or not)."""
    created = await operator.post("/users", json={"email": address or email(), "name": "Ada"})
    assert created.status_code == 202, created.text
    settled = await operator.get(created.headers["Location"], params={"wait": 25})
    assert settled.status_code == 200, settled.text
    user: dict[str, Any] = settled.json()
    return user


async def issue_key(client: httpx.AsyncClient, user_id: str) -> dict[str, str]:
    """A new key of the user: `{"key_id", "api_key"}`."""
    issued = await client.post(f"/users/{user_id}/keys")
    assert issued.status_code == 201, issued.text
    key: dict[str, str] = issued.json()
    return key
