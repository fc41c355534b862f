"""The relay on a real SQLite outbox (both drivers) with a publisher that records, not AMQP."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from config.settings import Settings
from contracts.envelope import Envelope
from contracts.orders import OrderStatus, OrderStatusChanged, SagaStep, StepTimedOut
from outbox.db import session_factory
from outbox.relay import Relay
from outbox.tables import OutboxMessage
from outbox.unit_of_work import UnitOfWork
from tests.support.fakes import RecordingPublisher


async def test_the_relay_publishes_now_routes_delays_and_defers_what_is_too_far(
    engine: AsyncEngine,
) -> None:
    # given an outbox with an event, a timer in 3 s and a timer beyond the longest delay
    settings = Settings(_env_file=None, delay_unit_ms=100, delay_levels=8)  # longest: 25.5 s
    order_id = uuid.uuid4()
    async with UnitOfWork(session_factory(engine)) as uow:
        uow.publish(
            Envelope(OrderStatusChanged(order_id=order_id, status=OrderStatus.PENDING, sequence=1))
        )
        timer = StepTimedOut(order_id=order_id, step=SagaStep.RESERVE_STOCK, sequence=1)
        uow.send_later(Envelope(timer), "billing.invoices", timedelta(seconds=3))
        uow.send_later(Envelope(timer), "billing.invoices", timedelta(hours=1))
        await uow.commit()
    publisher = RecordingPublisher()

    # when the relay runs once
    published = await Relay("billing", engine, publisher, settings).relay_once()

    # then the event went to its exchange, the near timer into the delay levels, the far one waits
    assert published == 2
    destinations = sorted((exchange, key) for exchange, key, _ in publisher.sent)
    assert destinations[0] == ("orders.events", "orders.OrderStatusChanged")
    exchange, key = destinations[1]
    assert exchange.startswith("warren.delay.") and key.endswith(".billing.invoices")
    async with session_factory(engine)() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    waiting = [row for row in rows if row.published_at is None]
    assert len(waiting) == 1 and waiting[0].attempts == 0 and waiting[0].last_error is None
    assert waiting[0].deliver_at is not None
    assert waiting[0].available_at >= waiting[0].deliver_at - timedelta(seconds=25.5)
