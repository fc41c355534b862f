"""The HTTP gateway end to end: real workers, a real broker, the gateway as its own process."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from config.settings import DEV_API_KEY, hash_api_key
from tests.support.harness import free_port, wait_for
from tests.support.orders import order_body
from tests.support.proxy import TcpProxy
from tests.support.system import WORKERS, System

OTHER_KEY = "other-client-key"
FLOOD_KEY = "flood-client-key"
API_KEYS = (
    f'["dev-client:{hash_api_key(DEV_API_KEY)}", "other:{hash_api_key(OTHER_KEY)}", '
    f'"flood:{hash_api_key(FLOOD_KEY)}"]'
)


def body(token: str = "tok_visa", sku: str = "MUG-7", quantity: int = 1) -> dict[str, Any]:
    return order_body(token, sku, quantity)


class Stack:
    def __init__(self, system: System, proxy: TcpProxy, port: int) -> None:
        self.system, self.proxy = system, proxy
        self.url = f"http://127.0.0.1:{port}"

    def client(self, key: str | None = DEV_API_KEY) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=40)


@pytest.fixture(scope="module")
async def stack(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("gateway-e2e")
    urls = {s: f"sqlite+inline:///{tmp / s}.db" for s in (*WORKERS, "gateway")}
    broker = urlsplit(amqp_url)
    proxy = TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
    await proxy.start()
    system = System(
        amqp_url,
        urls,
        Path(tmp),
        WARREN_API_KEYS=API_KEYS,
        WARREN_RATE_LIMIT_PER_S="20",
        WARREN_RATE_LIMIT_BURST="40",
    )
    await system.start()
    port = free_port()
    through_proxy = broker._replace(
        netloc=f"{broker.username}:{broker.password}@127.0.0.1:{proxy.port}"
    ).geturl()
    await system.start_gateway(port, broker_url=through_proxy)
    yield Stack(system, proxy, port)
    system.stop_all()
    await proxy.cut()


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and problem["title"]
    return problem


async def test_an_order_is_accepted_at_once_and_a_long_poll_returns_as_soon_as_it_is_confirmed(
    stack: Stack,
) -> None:
    async with stack.client() as client:
        placed = await client.post("/orders", json=body())
        assert placed.status_code == 202
        order = placed.json()
        assert placed.headers["Location"] == f"/orders/{order['order_id']}"
        assert placed.headers["Retry-After"] == "1"
        assert order["status"] == "PENDING"

        started = time.monotonic()
        final = await client.get(placed.headers["Location"], params={"wait": 25})
        elapsed = time.monotonic() - started
    assert final.status_code == 200
    assert final.json()["status"] == "CONFIRMED"
    assert final.json()["total"]["amount_cents"] > 0
    assert [h["status"] for h in final.json()["history"]] == [
        "PENDING",
        "STOCK_RESERVED",
        "PAID",
        "CONFIRMED",
    ]
    assert elapsed < 10, (
        f"the long-poll took {elapsed:.1f}s for an order that confirms in well under a second"
    )


async def test_ten_concurrent_posts_with_one_idempotency_key_make_one_order(stack: Stack) -> None:
    key = f"idem-{uuid.uuid4()}"
    async with stack.client() as client:
        answers = await asyncio.gather(
            *(
                client.post("/orders", json=body(), headers={"Idempotency-Key": key})
                for _ in range(10)
            )
        )
    assert {a.status_code for a in answers} == {202}
    order_ids = {a.json()["order_id"] for a in answers}
    assert len(order_ids) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 9
    orders = await stack.system.orders()
    await wait_for(lambda: _known(stack, order_ids), what="the order to reach the saga")
    assert len([o for o in (await stack.system.orders()) if o in order_ids]) == 1
    del orders


async def _known(stack: Stack, order_ids: set[str]) -> bool:
    return order_ids <= set(await stack.system.orders())


async def test_the_same_idempotency_key_with_another_body_is_refused(stack: Stack) -> None:
    key = f"idem-{uuid.uuid4()}"
    async with stack.client() as client:
        first = await client.post("/orders", json=body(), headers={"Idempotency-Key": key})
        second = await client.post(
            "/orders", json=body(quantity=2), headers={"Idempotency-Key": key}
        )
    assert first.status_code == 202
    assert "different request body" in problem_of(second, 422)["detail"]


async def test_unknown_orders_and_other_clients_orders_are_not_found(stack: Stack) -> None:
    async with stack.client() as client, stack.client(OTHER_KEY) as other:
        mine = (await client.post("/orders", json=body())).json()["order_id"]
        problem_of(await client.get(f"/orders/{uuid.uuid4()}"), 404)
        problem_of(await other.get(f"/orders/{mine}"), 404)
        problem_of(await other.post(f"/orders/{mine}/cancel"), 404)
        assert (await client.get(f"/orders/{mine}")).status_code == 200


async def test_no_key_or_a_wrong_key_is_unauthorized(stack: Stack) -> None:
    async with stack.client(None) as anonymous, stack.client("not-a-key") as wrong:
        problem_of(await anonymous.post("/orders", json=body()), 401)
        problem_of(await wrong.get(f"/orders/{uuid.uuid4()}"), 401)
        with_header = await anonymous.get(
            f"/orders/{uuid.uuid4()}", headers={"X-API-Key": DEV_API_KEY}
        )
    problem_of(with_header, 404)


async def test_a_flood_gets_429_with_retry_after(stack: Stack) -> None:
    async with stack.client(FLOOD_KEY) as client:
        answers = await asyncio.gather(*(client.get(f"/orders/{uuid.uuid4()}") for _ in range(80)))
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert all(int(a.headers["Retry-After"]) >= 1 for a in limited)
    problem_of(limited[0], 429)


async def test_an_oversized_body_gets_413_and_bad_input_gets_a_problem(stack: Stack) -> None:
    async with stack.client() as client:
        huge = body() | {"customer_id": "x" * (70 * 1024)}
        problem_of(await client.post("/orders", json=huge), 413)
        problem_of(
            await client.post(
                "/orders", content=b"{not json", headers={"content-type": "application/json"}
            ),
            422,
        )
        unknown = problem_of(await client.post("/orders", json=body() | {"coupon": "FREE"}), 422)
        assert "coupon" in unknown["detail"]
        problem_of(await client.post("/orders", json=body(quantity=0)), 422)
        problem_of(await client.get("/orders/not-a-uuid"), 422)


async def test_a_chunked_oversized_body_gets_413_with_the_security_headers(stack: Stack) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"customer_id": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    async with stack.client() as client:
        response = await client.post(
            "/orders", content=chunks(), headers={"content-type": "application/json"}
        )

    assert response.request.headers["transfer-encoding"] == "chunked"
    problem_of(response, 413)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_outcomes_reach_the_client_rejected_and_cancelled_with_reasons(stack: Stack) -> None:
    async with stack.client() as client:
        sold_out = (await client.post("/orders", json=body(sku="SOLD-OUT"))).json()["order_id"]
        declined = (await client.post("/orders", json=body(token="tok_declined"))).json()[
            "order_id"
        ]
        rejected = (await client.get(f"/orders/{sold_out}", params={"wait": 25})).json()
        cancelled = (await client.get(f"/orders/{declined}", params={"wait": 25})).json()
        refused = await client.post(f"/orders/{declined}/cancel")
    assert rejected["status"] == "REJECTED" and "SOLD-OUT" in rejected["reason"]
    assert cancelled["status"] == "CANCELLED" and "declined" in cancelled["reason"]
    problem_of(refused, 409)


async def test_with_the_broker_gone_orders_are_still_accepted_and_complete_when_it_returns(
    stack: Stack,
) -> None:
    await stack.proxy.cut()
    try:
        async with stack.client() as client:
            await wait_for(
                lambda: _broker_is(client, "unavailable"), what="the gateway to lose the broker"
            )
            placed = [await client.post("/orders", json=body()) for _ in range(3)]
            assert {p.status_code for p in placed} == {202}
            # the relay cannot publish them: paused, shown by a gateway that stays ready
            paused = await wait_for(
                lambda: _readyz_with(client, relay="paused"), timeout=40, what="a paused relay"
            )
            assert paused["broker"] == "unavailable"
    finally:
        await stack.proxy.start()
    async with stack.client() as client:
        finals = [await client.get(p.headers["Location"], params={"wait": 30}) for p in placed]
        await wait_for(
            lambda: _readyz_with(client, relay="running"), timeout=40, what="the relay to resume"
        )
    assert [f.json()["status"] for f in finals] == ["CONFIRMED"] * 3


async def _readyz_with(client: httpx.AsyncClient, **parts: str) -> dict[str, Any] | None:
    """The body of a 200 `/readyz` that shows every part in the given state, else None."""
    response = await client.get("/readyz")
    ready: dict[str, Any] = response.json()
    if response.status_code != 200 or any(ready.get(k) != v for k, v in parts.items()):
        return None
    return ready


async def _broker_is(client: httpx.AsyncClient, state: str) -> bool:
    return bool((await client.get("/readyz")).json()["broker"] == state)
