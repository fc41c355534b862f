"""A gateway whose broker-side start fails keeps taking orders, is not ready, and recovers."""

from __future__ import annotations

from pathlib import Path

import aio_pika
import httpx

from config.settings import DEV_API_KEY
from contracts.orders import PlaceOrder
from gateway.service import SERVICE
from tests.conftest import Backend, MakeDatabaseUrl
from tests.support.harness import free_port, wait_for
from tests.support.orders import order_body
from tests.support.roles import consumer_of
from tests.support.system import System

ORDERS = 5


async def test_a_failed_start_is_not_ready_until_the_relay_runs_then_publishes_all(
    e2e_amqp_url: str, backend: Backend, make_database_url: MakeDatabaseUrl, tmp_path: Path
) -> None:
    connection = await aio_pika.connect(e2e_amqp_url)
    channel = await connection.channel()
    # The gateway's own queue already exists with other arguments: its declaration is refused.
    conflicting = await channel.declare_queue(
        SERVICE.subscription.queue, durable=True, arguments={"x-queue-type": "classic"}
    )
    system = System(e2e_amqp_url, {"gateway": make_database_url(backend)}, tmp_path)
    port = free_port()
    try:
        gateway = await system.start_gateway(port, probe="/healthz")
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": DEV_API_KEY}, timeout=30
        ) as client:
            await wait_for(lambda: _status(client, 503), what="/readyz to say not ready")
            accepted = [
                await client.post(
                    "/orders",
                    json=order_body(customer=f"start-{i}"),
                    headers={"Idempotency-Key": f"start-{i}"},
                )
                for i in range(ORDERS)
            ]
            not_ready = await client.get("/readyz")
            await wait_for(
                lambda: _restarts(client), what="the failed start to be counted in /metrics"
            )
            await conflicting.delete(if_unused=False, if_empty=False)  # an operator's fix
            ready = await wait_for(
                lambda: _status(client, 200), timeout=60, what="the relay to run again"
            )
            work_queue = consumer_of(PlaceOrder).subscription.queue
            await wait_for(
                lambda: _holds(connection, work_queue, ORDERS),
                timeout=30,
                what=f"the {ORDERS} accepted orders in {work_queue}",
            )
    finally:
        system.stop_all()
        await connection.close()
    assert [r.status_code for r in accepted] == [202] * ORDERS
    assert not_ready.status_code == 503
    assert not_ready.headers["content-type"] == "application/problem+json"
    assert not_ready.headers["Retry-After"]
    assert ready.json()["tasks"]["messaging"] == "running"
    assert any("messaging failed" in line for line in gateway.lines), gateway.output()


async def _status(client: httpx.AsyncClient, status: int) -> httpx.Response | None:
    response = await client.get("/readyz")
    return response if response.status_code == status else None


async def _restarts(client: httpx.AsyncClient) -> bool:
    text = (await client.get("/metrics")).text
    return any(
        line.startswith("warren_background_task_restarts_total{")
        and 'task="messaging"' in line
        and float(line.rsplit(" ", 1)[1]) >= 1
        for line in text.splitlines()
    )


async def _holds(connection: aio_pika.abc.AbstractConnection, queue: str, count: int) -> bool:
    """Whether `queue` exists and holds at least `count` messages (a channel per look)."""
    try:
        async with connection.channel() as channel:
            declared = await channel.declare_queue(queue, passive=True)
    except aio_pika.exceptions.ChannelClosed:  # not declared yet
        return False
    return (declared.declaration_result.message_count or 0) >= count
