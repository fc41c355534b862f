"""The relay alone: N outbox rows published by `outbox.relay.Relay`, against the same N
messages published raw with aio-pika and publisher confirms, in batches of the same size."""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractQueue, AbstractRobustConnection
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Settings
from contracts.base import OrderLine
from contracts.envelope import Envelope
from contracts.inventory import ReserveStock
from contracts.registry import default_registry
from contracts.topology import exchange_for, routing_key_for
from outbox.amqp import ConfirmedPublisher, from_wire
from outbox.db import create_engine, create_tables, session_factory
from outbox.relay import Relay
from outbox.tables import MESSAGING_TABLES, OutboxMessage
from outbox.unit_of_work import UnitOfWork
from workers.runtime.topology import work_queue_arguments

SINK = "bench.relay.sink"
FILL_CHUNK = 500
EXCHANGE, ROUTING_KEY = exchange_for(ReserveStock), routing_key_for(ReserveStock)


def envelopes(count: int) -> list[Envelope[ReserveStock]]:
    """`count` ReserveStock commands, each caused by an earlier message, with trace context."""
    trace = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    lines = [OrderLine(sku="MUG-7", quantity=1)]
    return [
        Envelope(
            ReserveStock(order_id=uuid.uuid4(), items=lines),
            causation_id=str(uuid.uuid4()),
            traceparent=trace,
        )
        for _ in range(count)
    ]


class RelayBench:
    """One outbox database and one sink queue; each round starts from an empty outbox and sink."""

    def __init__(self, settings: Settings, amqp_url: str, db_url: str) -> None:
        self._settings, self._amqp_url = settings, amqp_url
        self._engine: AsyncEngine = create_engine(db_url)
        self._connection: AbstractRobustConnection | None = None
        self._sink: AbstractQueue | None = None
        self._raw: AbstractExchange | None = None
        self._relay: Relay | None = None

    async def start(self) -> None:
        """Create the outbox tables, the exchange and the sink queue bound to it."""
        await create_tables(self._engine, MESSAGING_TABLES)
        self._connection = await aio_pika.connect_robust(self._amqp_url)
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(
            EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        arguments = work_queue_arguments(self._settings, SINK)
        self._sink = await channel.declare_queue(SINK, durable=True, arguments=arguments)
        await self._sink.bind(exchange, ROUTING_KEY)
        raw = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._raw = await raw.get_exchange(EXCHANGE, ensure=False)
        publisher = ConfirmedPublisher(self._connection)
        self._relay = Relay("bench", self._engine, publisher, self._settings)

    async def relay_round(self, count: int) -> float:
        """Messages per second the relay moves from a full outbox to confirmed on the broker."""
        assert self._relay is not None, "start() first"
        await self._fill(count)
        started, published = time.perf_counter(), 0
        while published < count:
            batch = await self._relay.relay_once()
            if batch == 0:
                raise RuntimeError(f"the relay stopped after {published} of {count} messages")
            published += batch
        rate = count / (time.perf_counter() - started)
        await self._reset()
        return rate

    async def raw_round(self, count: int) -> float:
        """Messages per second published raw with confirms, `relay_batch_size` at a time."""
        assert self._raw is not None, "start() first"
        wires = [default_registry().encode(e) for e in envelopes(count)]
        size, exchange = self._settings.relay_batch_size, self._raw
        started = time.perf_counter()
        for first in range(0, count, size):
            batch = [from_wire(w, app_id="bench") for w in wires[first : first + size]]
            await asyncio.gather(*(exchange.publish(m, ROUTING_KEY, mandatory=True) for m in batch))
        rate = count / (time.perf_counter() - started)
        await self._reset()
        return rate

    async def _fill(self, count: int) -> None:
        pending = envelopes(count)
        sessions = session_factory(self._engine)
        for first in range(0, count, FILL_CHUNK):
            async with UnitOfWork(sessions) as uow:
                for envelope in pending[first : first + FILL_CHUNK]:
                    uow.publish(envelope)
                await uow.commit()

    async def _reset(self) -> None:
        assert self._sink is not None
        async with self._engine.begin() as connection:
            await connection.execute(delete(OutboxMessage))
        await self._sink.purge()

    async def close(self) -> None:
        """Close the broker connection and the database engine."""
        if self._connection is not None:
            await self._connection.close()
        await self._engine.dispose()
