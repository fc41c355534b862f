"""Start probe workers against a test vhost and database; publish orders; read the results."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aio_pika
from sqlalchemy import func
from sqlmodel import col, select

from contracts.base import Address, OrderLine
from contracts.envelope import Envelope
from contracts.orders import PaymentMethod, PlaceOrder
from contracts.registry import default_registry
from contracts.topology import dead_letter_queue, exchange_for, routing_key_for, work_queue
from outbox.amqp import from_wire
from outbox.db import create_engine, session_factory
from tests.support.harness import Process, consumer_ready
from tests.support.probe import ProbeEffect
from workers.ops.readiness import Probe


def place_order(mode: str) -> PlaceOrder:
    """A valid PlaceOrder whose customer id scripts the probe's behaviour."""
    return PlaceOrder(
        order_id=uuid.uuid4(),
        customer_id=mode,
        items=[OrderLine(sku="SKU-1", quantity=1)],
        payment=PaymentMethod(token="tok_visa"),
        shipping_address=Address(
            name="Ada", line1="1 Loop Road", city="Bristol", postal_code="BS1", country="GB"
        ),
    )


def _amqp(order: PlaceOrder) -> aio_pika.Message:
    wire = default_registry().encode(Envelope(order))
    return from_wire(wire, "tests")


class ProbeKit:
    """One probe service (queue `scripted.<group>`, its own database) inside a test vhost."""

    def __init__(self, amqp_url: str, database_url: str, tmp_path: Path, group: str) -> None:
        self.amqp_url, self.database_url, self.group = amqp_url, database_url, group
        self.queue = work_queue("scripted", group)
        self.dlq = dead_letter_queue(self.queue)
        self.log = tmp_path / f"{group}.attempts.jsonl"
        self.log.touch()
        self.processes: list[Process] = []

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "WARREN_ENV": "test",
            "WARREN_BROKER_URL": self.amqp_url,
            "WARREN_LOG_JSON": "false",
            "PROBE_DB_URL": self.database_url,
            "PROBE_LOG": str(self.log),
            "PROBE_GROUP": self.group,
            **extra,
        }

    def consuming(self) -> Probe:
        """Ready when a probe worker process consumes this kit's queue."""
        return consumer_ready(self.amqp_url, self.queue, "scripted-worker")

    async def start(self, **extra: str) -> Process:
        """Start a probe worker and wait until it consumes."""
        return await self.spawn(**extra).ready()

    def spawn(self, **extra: str) -> Process:
        """Start a probe worker without waiting: one that may die on its first delivery."""
        process = Process("tests.support.probe", self.env(**extra), probe=self.consuming())
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            process.kill()

    async def publish(self, message: aio_pika.Message, routing_key: str, exchange: str) -> None:
        """Publish one message with confirms and `mandatory`."""
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            target = await channel.get_exchange(exchange)
            await target.publish(message, routing_key, mandatory=True)

    async def place(self, mode: str) -> str:
        """Send a PlaceOrder scripted by `mode`; its order id."""
        order = place_order(mode)
        await self.publish(_amqp(order), routing_key_for(PlaceOrder), exchange_for(PlaceOrder))
        return str(order.order_id)

    async def place_many(self, mode: str, count: int) -> list[str]:
        """Send `count` PlaceOrders scripted by `mode` over one confirmed channel."""
        orders = [place_order(mode) for _ in range(count)]
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange = await channel.get_exchange(exchange_for(PlaceOrder))
            for start in range(0, count, 200):
                await asyncio.gather(
                    *(
                        exchange.publish(_amqp(order), routing_key_for(PlaceOrder), mandatory=True)
                        for order in orders[start : start + 200]
                    )
                )
        return [str(order.order_id) for order in orders]

    async def distinct_effects(self) -> int:
        """How many different orders had an effect applied."""
        engine = create_engine(self.database_url)
        try:
            async with session_factory(engine)() as session:
                query = select(func.count(func.distinct(col(ProbeEffect.order_id))))
                return int((await session.exec(query)).one())
        finally:
            await engine.dispose()

    async def effects(self, order_id: str | None = None) -> int:
        """How many effects were applied (for one order, or in all)."""
        engine = create_engine(self.database_url)
        try:
            async with session_factory(engine)() as session:
                query = select(func.count()).select_from(ProbeEffect)
                if order_id is not None:
                    query = query.where(col(ProbeEffect.order_id) == order_id)
                return int((await session.exec(query)).one())
        finally:
            await engine.dispose()

    async def drain_queue(self, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Take every ready message off a queue (acking them)."""
        connection = await aio_pika.connect(self.amqp_url)
        taken: list[Any] = []
        async with connection:
            channel = await connection.channel()
            amqp_queue = await channel.get_queue(queue, ensure=True)
            while (message := await amqp_queue.get(no_ack=True, fail=False)) is not None:
                taken.append(message)
        return taken

    async def ready_count(self, queue: str) -> int:
        """Ready messages in a queue, from a fresh passive declare."""
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            declared = await channel.declare_queue(queue, passive=True)
            return int(declared.declaration_result.message_count or 0)
