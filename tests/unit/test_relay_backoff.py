"""A refused outbox publish is retried forever, later each time, through the one backoff.

A publish that never reached the broker (connection lost, no confirm in time) is not the row's
fault: the relay pauses, and the row counts no attempt.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import aio_pika
import pytest
from aiormq.exceptions import DeliveryError
from pamqp.commands import Basic
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from config.settings import Settings
from contracts.envelope import Envelope
from contracts.orders import OrderStatus, OrderStatusChanged
from outbox.db import SessionFactory, create_engine, create_tables, session_factory
from outbox.relay import ROW_BACKOFF_BASE_S, ROW_BACKOFF_CAP_S, BrokerAway, Relay
from outbox.tables import MESSAGING_TABLES, OutboxMessage, utcnow
from outbox.unit_of_work import UnitOfWork
from tests.support.fakes import RecordingPublisher

ATTEMPTS = 10
SLACK_S = 1.0  # the time the relay itself takes between our clock reading and its own


class RefusingPublisher(RecordingPublisher):
    """A broker that refuses (nacks) every publish."""

    async def publish(
        self, message: aio_pika.Message, exchange: str, routing_key: str, *, timeout: float = 10.0
    ) -> Any:
        raise DeliveryError(None, Basic.Nack(delivery_tag=1))


class UnreachablePublisher(RecordingPublisher):
    """A broker out of reach."""

    async def publish(
        self, message: aio_pika.Message, exchange: str, routing_key: str, *, timeout: float = 10.0
    ) -> Any:
        raise ConnectionResetError("connection lost")


async def _one_event(tmp_path: Path) -> tuple[AsyncEngine, SessionFactory]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
    await create_tables(engine, MESSAGING_TABLES)
    sessions = session_factory(engine)
    async with UnitOfWork(sessions) as uow:
        uow.publish(
            Envelope(OrderStatusChanged(order_id=uuid4(), status=OrderStatus.PENDING, sequence=1))
        )
        await uow.commit()
    return engine, sessions


async def test_an_unreachable_broker_pauses_the_relay_and_costs_the_row_nothing(
    tmp_path: Path,
) -> None:
    engine, sessions = await _one_event(tmp_path)
    relay = Relay("billing", engine, UnreachablePublisher(), Settings(_env_file=None))
    for _ in range(3):
        with pytest.raises(BrokerAway):
            await relay.relay_once()
    async with sessions() as session:
        row = (await session.exec(select(OutboxMessage))).one()
    await engine.dispose()
    assert row.published_at is None
    assert row.attempts == 0 and row.last_error is None
    assert row.available_at <= utcnow(), "due again as soon as the broker is back"


async def test_a_refused_publish_waits_longer_each_attempt_up_to_the_cap(tmp_path: Path) -> None:
    # given one event in a real SQLite outbox and a broker that refuses everything
    engine, sessions = await _one_event(tmp_path)
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
        assert row.last_error is not None and row.last_error.startswith("DeliveryError")
        ceiling = min(ROW_BACKOFF_CAP_S, ROW_BACKOFF_BASE_S * 2 ** (attempt - 1))
        wait = (row.available_at - before).total_seconds()
        assert ceiling / 2 <= wait <= ceiling + SLACK_S, (attempt, wait)
        waits.append(wait)
    await engine.dispose()

    # and the first retry comes within a second, the last ones after half a minute or more
    assert waits[0] <= 1 + SLACK_S
    assert all(wait >= ROW_BACKOFF_CAP_S / 2 for wait in waits[-3:])
