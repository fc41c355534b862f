"""A refused outbox publish is retried forever, later each time, through the one backoff."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import aio_pika
from sqlalchemy import update
from sqlmodel import select

from config.settings import Settings
from contracts.envelope import Envelope
from contracts.orders import OrderStatus, OrderStatusChanged
from outbox.db import create_engine, create_tables, session_factory
from outbox.relay import ROW_BACKOFF_BASE_S, ROW_BACKOFF_CAP_S, Relay
from outbox.tables import MESSAGING_TABLES, OutboxMessage, utcnow
from outbox.unit_of_work import UnitOfWork
from tests.support.fakes import RecordingPublisher

ATTEMPTS = 10
SLACK_S = 1.0  # the time the relay itself takes between our clock reading and its own


class RefusingPublisher(RecordingPublisher):
    """A broker that refuses every publish."""

    async def publish(
        self, message: aio_pika.Message, exchange: str, routing_key: str, *, timeout: float = 10.0
    ) -> Any:
        raise ConnectionError("broker refused the publish")


async def test_a_refused_publish_waits_longer_each_attempt_up_to_the_cap(tmp_path: Path) -> None:
    # given one event in a real SQLite outbox and a broker that refuses everything
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
    await create_tables(engine, MESSAGING_TABLES)
    sessions = session_factory(engine)
    async with UnitOfWork(sessions) as uow:
        uow.publish(
            Envelope(OrderStatusChanged(order_id=uuid4(), status=OrderStatus.PENDING, sequence=1))
        )
        await uow.commit()
    relay = Relay("billing", engine, RefusingPublisher(), Settings(_env_file=None))

    waits = []
    for attempt in range(1, ATTEMPTS + 1):
        # when the relay tries the row (made due again by hand after each failure)
        before = utcnow()
        assert await relay.relay_once() == 0
        async with sessions() as session:
            row = (await session.exec(select(OutboxMessage))).one()
        async with sessions() as session:
            await session.exec(
                update(OutboxMessage).values(available_at=utcnow() - timedelta(seconds=1))
            )
            await session.commit()

        # then it stays pending, counts the attempt, keeps the error and waits its backoff
        assert row.published_at is None and row.attempts == attempt
        assert row.last_error == "ConnectionError: broker refused the publish"
        ceiling = min(ROW_BACKOFF_CAP_S, ROW_BACKOFF_BASE_S * 2 ** (attempt - 1))
        wait = (row.available_at - before).total_seconds()
        assert ceiling / 2 <= wait <= ceiling + SLACK_S, (attempt, wait)
        waits.append(wait)
    await engine.dispose()

    # and the first retry comes within a second, the last ones after half a minute or more
    assert waits[0] <= 1 + SLACK_S
    assert all(wait >= ROW_BACKOFF_CAP_S / 2 for wait in waits[-3:])
