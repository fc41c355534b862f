"""Wiring through FastStream's in-memory broker: a contract on its exchange reaches one service.

`TestRabbitBroker` emulates no DLX, TTL, redelivery or confirms: those stay with the
integration tests on a real RabbitMQ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faststream.rabbit import TestRabbitBroker
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from config.settings import Settings
from contracts.base import Message
from contracts.envelope import Envelope
from contracts.registry import default_registry
from contracts.topology import exchange_for, routing_key_for
from outbox.db import create_tables, session_factory
from outbox.tables import MESSAGING_TABLES, InboxMessage, OutboxMessage
from tests.support.fakes import RecordingPublisher
from workers.runtime.consumer import Consumer
from workers.runtime.edge import edge_broker, router_for
from workers.runtime.service import ServiceSpec


def runtime_of(
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


async def ready(spec: ServiceSpec, engine: AsyncEngine, tables: Sequence[Any] = ()) -> None:
    """The service's tables (or `tables`) and the runtime's, then its start-up work."""
    await create_tables(engine, (*MESSAGING_TABLES, *(tables or spec.tables)))
    if spec.on_start is not None:
        await spec.on_start(session_factory(engine))


async def deliver_on_its_exchange(
    spec: ServiceSpec, engine: AsyncEngine, settings: Settings, message: Message
) -> str:
    """Publish `message` on its exchange with its routing key to the service; its message id."""
    broker = edge_broker(settings, f"{spec.name}-worker")
    broker.include_router(router_for(spec, runtime_of(spec, engine, settings)))
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
    return wire.message_id


async def outbox_types(engine: AsyncEngine) -> set[str]:
    """The types of the messages in the service's outbox."""
    async with session_factory(engine)() as session:
        return set((await session.exec(select(OutboxMessage.type))).all())


async def claimed(engine: AsyncEngine) -> list[str]:
    """The message ids the service's inbox holds."""
    async with session_factory(engine)() as session:
        return list((await session.exec(select(InboxMessage.message_id))).all())
