"""Smoke tests: the test fixtures reach a real RabbitMQ, PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from config.settings import Settings
from contracts import orders, topology
from contracts.base import Address, OrderLine
from contracts.envelope import Envelope
from contracts.registry import default_registry
from outbox.amqp import from_wire

WAIT_S = 10.0


def _place_order() -> orders.PlaceOrder:
    return orders.PlaceOrder(
        order_id=uuid4(),
        customer_id="customer-1",
        items=[OrderLine(sku="WIDGET-1", quantity=2)],
        payment=orders.PaymentMethod(token="tok_visa"),
        shipping_address=Address(
            name="Ada Lovelace",
            line1="1 Analytical Way",
            city="London",
            postal_code="N1",
            country="GB",
        ),
    )


async def _next_message(queue: AbstractQueue) -> AbstractIncomingMessage:
    async with asyncio.timeout(WAIT_S), queue.iterator() as messages:
        async for message in messages:
            return message
    raise AssertionError(f"the queue {queue.name} closed before a message arrived")


async def test_a_confirmed_contract_message_comes_back_unchanged(test_settings: Settings) -> None:
    registry = default_registry()
    sent = Envelope(_place_order(), correlation_id="smoke-correlation")
    exchange_name = topology.exchange_for(orders.PlaceOrder)
    routing_key = topology.routing_key_for(orders.PlaceOrder)

    connection = await aio_pika.connect(test_settings.amqp_url(), timeout=WAIT_S)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            topology.work_queue("smoke", "place-order"),
            durable=True,
            arguments={"x-queue-type": test_settings.queue_type},
        )
        await queue.bind(exchange, routing_key)

        confirmation = await exchange.publish(
            from_wire(registry.encode(sent), "warren-tests"),
            routing_key,
            mandatory=True,
            timeout=WAIT_S,
        )
        incoming = await _next_message(queue)
        await incoming.ack()

    assert isinstance(confirmation, aiormq.spec.Basic.Ack)
    assert incoming.type == "orders.PlaceOrder.v2"
    received = registry.decode(
        incoming.body,
        type_name=incoming.type,
        message_id=incoming.message_id,
        correlation_id=incoming.correlation_id,
        timestamp=incoming.timestamp,
        headers=incoming.headers,
    )
    assert received.message == sent.message
    assert received.message_id == sent.message_id
    assert received.correlation_id == sent.correlation_id


async def test_an_unroutable_mandatory_publish_is_an_error(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url, timeout=WAIT_S)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        message = aio_pika.Message(b"{}", message_id="unroutable-1")
        with pytest.raises(aio_pika.exceptions.PublishError):
            await channel.default_exchange.publish(
                message, "no-such-queue", mandatory=True, timeout=WAIT_S
            )


async def test_the_database_url_gives_a_working_async_engine(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("select 1"))).scalar_one() == 1
    finally:
        await engine.dispose()
