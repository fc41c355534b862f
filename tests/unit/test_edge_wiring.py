"""Wiring through FastStream's in-memory broker, for every service: each binding of a work queue
is a subscriber, the gateway's projection commits what reaches it, and a body FastStream cannot
parse still reaches the runtime. Each worker's own contract-to-effect test lives in
`tests/services/<name>/test_wiring.py`.

`TestRabbitBroker` emulates no DLX, TTL, redelivery or confirms: those stay with the
integration tests on a real RabbitMQ.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from faststream.rabbit import TestRabbitBroker
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from config.settings import Environment, Settings
from contracts.orders import OrderStatus, OrderStatusChanged
from contracts.registry import default_registry
from contracts.topology import (
    DEAD_LETTER_EXCHANGE,
    dead_letter_queue,
    exchange_for,
    routing_key_for,
)
from gateway.messaging import status_subscriber
from gateway.notifier import Notifier
from gateway.tables import TABLES as GATEWAY_TABLES
from gateway.tables import OrderView
from outbox.db import create_engine, create_tables, session_factory
from outbox.tables import MESSAGING_TABLES, utcnow
from tests.contracts.samples import ORDER_ID
from tests.support.fakes import RecordingPublisher
from tests.support.wiring import claimed, deliver_on_its_exchange, ready, runtime_of
from workers.runtime.declaration import Service
from workers.runtime.discovery import workers
from workers.runtime.edge import edge_broker, router_for


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(env=Environment.TEST, var_dir=tmp_path)


@pytest.fixture
async def service_db(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}")
    yield engine
    await engine.dispose()


async def a_pending_order_view(engine: AsyncEngine) -> None:
    """The gateway accepted the order: its view is PENDING at sequence 0."""
    async with session_factory(engine)() as session:
        session.add(
            OrderView(
                order_id=str(ORDER_ID),
                client="client-1",
                customer_id="c-1",
                status=OrderStatus.PENDING,
                items=[],
                currency="EUR",
                created_at=utcnow(),
            )
        )
        await session.commit()


async def order_status(engine: AsyncEngine) -> set[str]:
    async with session_factory(engine)() as session:
        return set((await session.exec(select(OrderView.status))).all())


async def test_a_status_change_on_its_exchange_reaches_the_gateway_and_commits_its_view(
    settings: Settings, service_db: AsyncEngine
) -> None:
    spec = status_subscriber(Notifier())
    await ready(spec, service_db, GATEWAY_TABLES)
    await a_pending_order_view(service_db)
    changed = OrderStatusChanged(order_id=ORDER_ID, status=OrderStatus.STOCK_RESERVED, sequence=1)

    message_id = await deliver_on_its_exchange(spec, service_db, settings, changed)

    assert {OrderStatus.STOCK_RESERVED} <= await order_status(service_db)
    assert await claimed(service_db) == [message_id]


@pytest.mark.parametrize("service", workers(), ids=lambda s: s.name)
def test_every_binding_of_a_work_queue_is_a_subscriber(
    settings: Settings, service_db: AsyncEngine, service: Service
) -> None:
    spec = service.load("bootstrap")(settings)
    broker = edge_broker(settings, f"{spec.name}-worker")

    broker.include_router(router_for(spec, runtime_of(spec, service_db, settings)))

    routes = {(s.exchange.name, s.queue.routing()) for s in broker.subscribers}
    assert {s.queue.name for s in broker.subscribers} == {spec.subscription.queue}
    assert routes == {
        (exchange_for(m), routing_key_for(m))
        for m in map(default_registry().newest, spec.subscription.messages)
    }


@pytest.mark.parametrize("service", workers(), ids=lambda s: s.name)
async def test_a_body_faststream_cannot_parse_still_reaches_the_runtime(
    settings: Settings, service_db: AsyncEngine, service: Service
) -> None:
    spec = service.load("bootstrap")(settings)
    await create_tables(service_db, (*MESSAGING_TABLES, *spec.tables))
    contract = service.consumes[0]
    publisher = RecordingPublisher()
    broker = edge_broker(settings, f"{spec.name}-worker")
    broker.include_router(router_for(spec, runtime_of(spec, service_db, settings, publisher)))

    async with TestRabbitBroker(broker) as test_broker:
        await test_broker.publish(
            b"{not json",
            exchange=exchange_for(contract),
            routing_key=routing_key_for(contract),
            message_id="m-bad",
            message_type=contract.type_name(),
            content_type="application/json",
        )

    ((exchange, routing_key, copy),) = publisher.sent
    assert (exchange, routing_key) == (
        DEAD_LETTER_EXCHANGE,
        dead_letter_queue(spec.subscription.queue),
    )
    assert copy.headers["failure-reason"] == "poison"
