"""Wiring through FastStream's in-memory broker: a contract published to a service's exchange
with its routing key reaches that service's subscriber, and its handler's effect is committed.

`TestRabbitBroker` emulates no DLX, TTL, redelivery or confirms: those stay with the
integration tests on a real RabbitMQ.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from faststream.rabbit import TestRabbitBroker
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from config.settings import Environment, Settings
from contracts.base import Message
from contracts.envelope import Envelope
from contracts.inventory import ReserveStock
from contracts.orders import OrderStatus, OrderStatusChanged, PlaceOrder
from contracts.payments import CapturePayment
from contracts.registry import default_registry
from contracts.shipping import ArrangeShipment
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
from outbox.tables import MESSAGING_TABLES, InboxMessage, OutboxMessage, utcnow
from tests.contracts.samples import ORDER_ID, sample
from tests.support.fakes import RecordingPublisher
from workers.inventory.bootstrap import bootstrap as inventory
from workers.orders.bootstrap import bootstrap as orders
from workers.payments.bootstrap import bootstrap as payments
from workers.runtime.consumer import Consumer
from workers.runtime.edge import edge_broker, router_for
from workers.runtime.service import ServiceSpec
from workers.shipping.bootstrap import bootstrap as shipping

Given = Callable[[AsyncEngine], Awaitable[None]]


async def nothing(_: AsyncEngine) -> None:
    """No state needed before the message."""


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


async def outbox_types(engine: AsyncEngine) -> set[str]:
    async with session_factory(engine)() as session:
        return set((await session.exec(select(OutboxMessage.type))).all())


async def order_status(engine: AsyncEngine) -> set[str]:
    async with session_factory(engine)() as session:
        return set((await session.exec(select(OrderView.status))).all())


SERVICES: list[tuple[Callable[[Settings], ServiceSpec], Message, Given, Any, set[str]]] = [
    (orders, sample(PlaceOrder), nothing, outbox_types, {"inventory.ReserveStock.v1"}),
    (inventory, sample(ReserveStock), nothing, outbox_types, {"inventory.StockReserved.v1"}),
    (payments, sample(CapturePayment), nothing, outbox_types, {"payments.PaymentDeclined.v1"}),
    (shipping, sample(ArrangeShipment), nothing, outbox_types, {"shipping.ShipmentArranged.v1"}),
    (
        lambda _: status_subscriber(Notifier()),
        OrderStatusChanged(order_id=ORDER_ID, status=OrderStatus.STOCK_RESERVED, sequence=1),
        a_pending_order_view,
        order_status,
        {OrderStatus.STOCK_RESERVED},
    ),
]


def consumer_of(
    spec: ServiceSpec,
    engine: AsyncEngine,
    settings: Settings,
    publisher: RecordingPublisher | None = None,
) -> Consumer:
    """The runtime of a service on `engine`, with a publisher whose broker always confirms."""
    return Consumer(
        service=spec.name,
        queue=spec.subscription.queue,
        handlers=spec.handlers,
        sessions=session_factory(engine),
        publisher=publisher or RecordingPublisher(),
        settings=settings,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(env=Environment.TEST, var_dir=tmp_path)


@pytest.fixture
async def service_db(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}")
    yield engine
    await engine.dispose()


@pytest.mark.parametrize(
    ("build", "message", "given", "effect", "expected"),
    SERVICES,
    ids=["orders", "inventory", "payments", "shipping", "gateway"],
)
async def test_a_contract_on_its_exchange_reaches_the_service_and_commits_its_effect(
    settings: Settings,
    service_db: AsyncEngine,
    build: Callable[[Settings], ServiceSpec],
    message: Message,
    given: Given,
    effect: Callable[[AsyncEngine], Awaitable[set[str]]],
    expected: set[str],
) -> None:
    spec = build(settings)
    tables = GATEWAY_TABLES if spec.name == "gateway" else spec.tables
    await create_tables(service_db, (*MESSAGING_TABLES, *tables))
    sessions = session_factory(service_db)
    if spec.on_start is not None:
        await spec.on_start(sessions)
    await given(service_db)
    broker = edge_broker(settings, f"{spec.name}-worker")
    broker.include_router(router_for(spec, consumer_of(spec, service_db, settings)))
    wire = default_registry().encode(Envelope(message, correlation_id="flow-1"))

    async with TestRabbitBroker(broker) as test_broker:
        await test_broker.publish(
            wire.body,
            exchange=exchange_for(type(message)),
            routing_key=routing_key_for(type(message)),
            message_id=wire.message_id,
            message_type=wire.type,
            correlation_id=wire.correlation_id,
            headers=dict(wire.headers),
            content_type=wire.content_type,
            persist=True,
        )

    assert expected <= await effect(service_db)
    async with sessions() as session:
        claimed = (await session.exec(select(InboxMessage.message_id))).all()
    assert claimed == [wire.message_id]


def test_every_binding_of_a_work_queue_is_a_subscriber(
    settings: Settings, service_db: AsyncEngine
) -> None:
    spec = orders(settings)
    broker = edge_broker(settings, "orders-worker")

    broker.include_router(router_for(spec, consumer_of(spec, service_db, settings)))

    routes = {(s.exchange.name, s.queue.routing()) for s in broker.subscribers}
    assert {s.queue.name for s in broker.subscribers} == {spec.subscription.queue}
    assert routes == {
        (exchange_for(m), routing_key_for(m))
        for m in map(default_registry().newest, spec.subscription.messages)
    }


async def test_a_body_faststream_cannot_parse_still_reaches_the_runtime(
    settings: Settings, service_db: AsyncEngine
) -> None:
    spec = shipping(settings)
    await create_tables(service_db, (*MESSAGING_TABLES, *spec.tables))
    publisher = RecordingPublisher()
    broker = edge_broker(settings, "shipping-worker")
    broker.include_router(router_for(spec, consumer_of(spec, service_db, settings, publisher)))

    async with TestRabbitBroker(broker) as test_broker:
        await test_broker.publish(
            b"{not json",
            exchange=exchange_for(ArrangeShipment),
            routing_key=routing_key_for(ArrangeShipment),
            message_id="m-bad",
            message_type=ArrangeShipment.type_name(),
            content_type="application/json",
        )

    ((exchange, routing_key, copy),) = publisher.sent
    assert (exchange, routing_key) == (
        DEAD_LETTER_EXCHANGE,
        dead_letter_queue(spec.subscription.queue),
    )
    assert copy.headers["failure-reason"] == "poison"
