"""Deliver a contract to a service through FastStream's in-memory broker, as its edge would.

For wiring tests only: `TestRabbitBroker` emulates no DLX, TTL, redelivery or confirms.
"""

from __future__ import annotations

from faststream.rabbit import TestRabbitBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Settings
from contracts.base import Message
from contracts.envelope import Envelope
from contracts.registry import default_registry
from contracts.topology import exchange_for, routing_key_for
from outbox.db import create_tables, session_factory
from outbox.tables import MESSAGING_TABLES
from tests.support.fakes import RecordingPublisher
from workers.runtime.consumer import Consumer
from workers.runtime.edge import edge_broker, router_for
from workers.runtime.service import ServiceSpec


async def deliver_through_edge(
    spec: ServiceSpec, message: Message, engine: AsyncEngine, settings: Settings
) -> str:
    """Publish `message` to its exchange with its routing key; the message id it was sent with."""
    await create_tables(engine, (*MESSAGING_TABLES, *spec.tables))
    consumer = Consumer(
        service=spec.name,
        queue=spec.subscription.queue,
        handlers=spec.handlers,
        sessions=session_factory(engine),
        publisher=RecordingPublisher(),
        settings=settings,
    )
    broker = edge_broker(settings, f"{spec.name}-worker")
    broker.include_router(router_for(spec, consumer))
    wire = default_registry().encode(Envelope(message))
    async with TestRabbitBroker(broker) as test_broker:
        await test_broker.publish(
            wire.body,
            exchange=exchange_for(type(message)),
            routing_key=routing_key_for(type(message)),
            message_id=wire.message_id,
            message_type=wire.type,
            headers=dict(wire.headers),
            content_type=wire.content_type,
            persist=True,
        )
    return wire.message_id
