"""The gateway's public surface through real HTTP on the app: headers, docs, metrics, 413."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from config.settings import DEV_API_KEY, Settings
from gateway.app import create_app
from gateway.limits import MAX_BODY_BYTES


def settings(**values: Any) -> Settings:
    """Settings from these values alone: no `.env`, no `WARREN_*` (see conftest)."""
    return Settings(_env_file=None, **values)


def client(base_url: str = "http://gateway.test", **values: Any) -> httpx.AsyncClient:
    """An HTTP client on a fresh app, with no lifespan: nothing here needs the database."""
    transport = httpx.ASGITransport(app=create_app(settings(**values)))
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
    return httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers)


async def test_a_chunked_body_over_the_limit_gets_413_problem_json() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"customer_id": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    async with client() as http:
        response = await http.post(
            "/orders", content=chunks(), headers={"content-type": "application/json"}
        )

    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
