"""With its database unreachable the gateway answers 503 problem+json, and recovers after."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from config.settings import DEV_API_KEY
from tests.support.harness import free_port, wait_for
from tests.support.orders import order_body
from tests.support.proxy import TcpProxy
from tests.support.system import System

ORDER = order_body(customer="db-down")


async def test_an_unreachable_database_gives_503_and_nothing_half_done(
    e2e_amqp_url: str, make_database_url, tmp_path: Path
) -> None:
    database = urlsplit(make_database_url("postgres"))
    proxy = TcpProxy(database.hostname or "127.0.0.1", database.port or 5432)
    await proxy.start()
    through_proxy = database._replace(netloc=f"{database.username}@127.0.0.1:{proxy.port}").geturl()
    system = System(e2e_amqp_url, {"gateway": through_proxy}, tmp_path)
    port = free_port()
    try:
        await system.start_gateway(port)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": DEV_API_KEY}, timeout=30
        ) as client:
            await proxy.cut()
            down = await client.post("/orders", json=ORDER, headers={"Idempotency-Key": "k-1"})
            ready = await client.get("/readyz")
            lookup = await client.get(f"/orders/{uuid.uuid4()}")
            await proxy.start()
            await wait_for(lambda: _ready(client), what="the gateway to reach its database again")
            again = await client.post("/orders", json=ORDER, headers={"Idempotency-Key": "k-1"})
    finally:
        system.stop_all()
        await proxy.cut()
    for response in (down, ready, lookup):
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["Retry-After"]
        assert "Traceback" not in response.text
    assert again.status_code == 202
    assert again.headers.get("Idempotent-Replayed") is None, "the failed attempt stored nothing"


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200
