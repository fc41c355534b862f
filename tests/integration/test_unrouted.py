"""Messages no queue takes yet: events are parked and published, commands wait visibly.

Real broker (a fresh vhost for this module), SQLite and PostgreSQL outboxes, the relay in-process.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from loguru import logger
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from config.settings import Settings
from contracts.base import Message, OrderLine
from contracts.envelope import Envelope
from contracts.inventory import ReserveStock
from contracts.orders import OrderStatus, OrderStatusChanged
from contracts.topology import UNROUTED_QUEUE, exchange_for, routing_key_for
from outbox.amqp import ConfirmedPublisher
from outbox.backlog import read_backlog
from outbox.db import session_factory
from outbox.relay import Relay
from outbox.tables import OutboxMessage, utcnow
from outbox.unit_of_work import UnitOfWork
from tests.support.harness import wait_for
from workers.runtime.discovery import services
from workers.runtime.topology import apply_plan, build_plan

SERVICE = "billing"  # the relay's name is only a label here


@pytest.fixture
async def connection(test_settings: Settings) -> AsyncIterator[AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(test_settings.amqp_url())
    async with connection:
        # no service has subscribed to anything yet
        await apply_plan(connection, build_plan(test_settings, []))
        yield connection


@pytest.fixture
def relay(
    engine: AsyncEngine, connection: AbstractRobustConnection, test_settings: Settings
) -> Relay:
    return Relay(SERVICE, engine, ConfirmedPublisher(connection), test_settings)


async def write(engine: AsyncEngine, message: Message) -> str:
    """Commit one message into the outbox; its id."""
    envelope = Envelope(message)
    async with UnitOfWork(session_factory(engine)) as uow:
        uow.publish(envelope)
        await uow.commit()
    return envelope.message_id


async def outbox_row(engine: AsyncEngine, message_id: str) -> OutboxMessage:
    async with session_factory(engine)() as session:
        return (
            await session.exec(select(OutboxMessage).where(OutboxMessage.id == message_id))
        ).one()


async def take(
    connection: AbstractRobustConnection, queue: str, message_id: str
) -> AbstractIncomingMessage | None:
    """Remove the message with `message_id` from `queue` if it is there (others are put back)."""
    async with connection.channel() as channel:
        source = await channel.get_queue(queue, ensure=False)
        others = []
        found = None
        while (message := await source.get(fail=False)) is not None:
            if message.message_id == message_id:
                await message.ack()
                found = message
                break
            others.append(message)
        for other in others:
            await other.nack(requeue=True)
        return found


def unroutable_count(exchange: str) -> float:
    labels = {"service": SERVICE, "exchange": exchange}
    return REGISTRY.get_sample_value("warren_outbox_unroutable_total", labels) or 0.0


def status_changed() -> OrderStatusChanged:
    return OrderStatusChanged(order_id=uuid.uuid4(), status=OrderStatus.PENDING, sequence=1)


async def test_an_event_nobody_subscribes_to_is_published_once_and_parked(
    engine: AsyncEngine, connection: AbstractRobustConnection, relay: Relay
) -> None:
    # given an event in the outbox and no queue bound to its exchange
    message_id = await write(engine, status_changed())

    # when the relay runs
    published = await relay.relay_once()

    # then the row is published at the first attempt, with no error and nothing to retry
    assert published == 1
    row = await outbox_row(engine, message_id)
    assert row.published_at is not None
    assert row.attempts == 0 and row.last_error is None
    assert await relay.relay_once() == 0
    # and the event waits in the parking queue, recognisable by its type and id
    parked = await wait_for(
        lambda: take(connection, UNROUTED_QUEUE, message_id), what="the parked event"
    )
    assert parked.type == row.type == OrderStatusChanged.type_name()
    assert parked.message_id == message_id
    assert parked.exchange == exchange_for(OrderStatusChanged)
    assert parked.routing_key == routing_key_for(OrderStatusChanged)


async def test_a_command_with_no_route_waits_visibly_without_blocking_and_is_delivered_later(
    engine: AsyncEngine,
    connection: AbstractRobustConnection,
    relay: Relay,
    test_settings: Settings,
    database_url: str,
) -> None:
    # given a command in the outbox and no queue bound for it (an earlier backend's run bound one)
    inventory = next(s for s in services() if ReserveStock in s.consumes).subscription
    async with connection.channel() as channel:
        await channel.queue_delete(inventory.queue)
    command = ReserveStock(order_id=uuid.uuid4(), items=[OrderLine(sku="SKU-1", quantity=1)])
    exchange, key = exchange_for(ReserveStock), routing_key_for(ReserveStock)
    command_id = await write(engine, command)
    before = unroutable_count(exchange)
    errors: list[Any] = []
    sink = logger.add(errors.append, level="ERROR", format="{message}")

    # when the relay runs
    try:
        published = await relay.relay_once()
    finally:
        logger.remove(sink)

    # then the row stays, says it is unroutable and where, and is tried again later, not now
    assert published == 0
    row = await outbox_row(engine, command_id)
    assert row.published_at is None and row.attempts == 1
    assert row.last_error is not None and row.last_error.startswith("Unroutable:")
    assert exchange in row.last_error and key in row.last_error
    assert 0 < (row.available_at - utcnow()).total_seconds() <= 60
    # and it is counted, and logged once as an error naming exchange and key, without the body
    assert unroutable_count(exchange) == before + 1
    assert len(errors) == 1
    assert exchange in errors[0] and key in errors[0] and command_id in errors[0]
    assert str(command.order_id) not in errors[0]
    # and `warren status` reads it from the database as unroutable
    backlog = await read_backlog(database_url)
    assert (backlog.pending, backlog.unroutable) == (1, 1) and backlog.in_error

    # when other rows arrive meanwhile, then they are published; the command does not block them
    event_id = await write(engine, status_changed())
    assert await relay.relay_once() == 1
    assert (await outbox_row(engine, event_id)).published_at is not None

    # when its subscriber's queue is bound, then the command is delivered at its next attempt
    await apply_plan(connection, build_plan(test_settings, [inventory]))

    async def delivered() -> AbstractIncomingMessage | None:
        await relay.relay_once()
        return await take(connection, inventory.queue, command_id)

    received = await wait_for(delivered, timeout=10, what="the command in its queue")
    assert received.type == ReserveStock.type_name()
    assert (await outbox_row(engine, command_id)).published_at is not None
