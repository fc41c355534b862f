"""The unit of work: a state change and its outgoing messages commit together.

The guarantee is the database's, so it is proven on both SQLite drivers and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from contracts.envelope import Envelope
from contracts.inventory import ReserveStock
from contracts.orders import PlaceOrder, StepTimedOut
from contracts.registry import default_registry
from outbox.db import SessionFactory, session_factory
from outbox.tables import InboxMessage, OutboxMessage
from outbox.unit_of_work import UnitOfWork
from tests.conftest import BACKENDS, Backend
from tests.contracts.samples import sample

TIMER_QUEUE = "billing.invoices"
COUNT_OUTBOX = "SELECT count(*) FROM outbox_message"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every backend, PostgreSQL included (unit tests elsewhere use SQLite only)."""
    chosen: Backend = request.param
    return chosen


class HandlerFailed(Exception):
    pass


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return session_factory(engine)


class Wakes:
    """Records relay wake-ups and, at each, what another connection already sees."""

    def __init__(self, database_url: str) -> None:
        self._url = make_url(database_url)
        self.visible_outbox_rows: list[int] = []

    def __call__(self) -> None:
        self.visible_outbox_rows.append(self._count_elsewhere())

    def _count_elsewhere(self) -> int:
        """The outbox rows a separate connection sees now; it blocks, as the wake-up is sync."""
        if self._url.get_backend_name() == "sqlite":
            with closing(sqlite3.connect(str(self._url.database))) as other_connection:
                (count,) = other_connection.execute(COUNT_OUTBOX).fetchone()
            return int(count)
        dsn = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        with ThreadPoolExecutor(max_workers=1) as pool:  # its own loop: this one is busy
            return pool.submit(asyncio.run, _count_on_postgres(dsn)).result()

    @property
    def count(self) -> int:
        return len(self.visible_outbox_rows)


async def _count_on_postgres(dsn: str) -> int:
    other_connection = await asyncpg.connect(dsn, timeout=5)
    try:
        return int(await other_connection.fetchval(COUNT_OUTBOX))
    finally:
        await other_connection.close()


async def outbox_rows(sessions: SessionFactory) -> dict[str, OutboxMessage]:
    async with sessions() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    return {row.id: row for row in rows}


async def inbox_rows(sessions: SessionFactory) -> list[InboxMessage]:
    async with sessions() as session:
        return list((await session.exec(select(InboxMessage))).all())


def handled(message_id: str) -> InboxMessage:
    """The state change of a handler: here, the inbox row it writes in the same transaction."""
    return InboxMessage(consumer="billing.invoices", message_id=message_id)


async def test_messages_commit_with_the_state_change(sessions: SessionFactory) -> None:
    # given a handler that changes state, publishes a command and schedules a timeout
    command = Envelope(sample(ReserveStock), correlation_id="flow-1", causation_id="msg-0")
    timeout = Envelope(sample(StepTimedOut), correlation_id="flow-1")

    # when its unit of work commits
    async with UnitOfWork(sessions) as uow:
        uow.session.add(handled("msg-0"))
        uow.publish(command)
        uow.send_later(timeout, TIMER_QUEUE, timedelta(seconds=30))
        await uow.commit()

    # then the state change and both outbox rows are stored
    assert [row.message_id for row in await inbox_rows(sessions)] == ["msg-0"]
    rows = await outbox_rows(sessions)
    assert set(rows) == {command.message_id, timeout.message_id}
    published = rows[command.message_id]
    wire = default_registry().encode(command)
    assert (published.exchange, published.routing_key) == (
        "inventory.commands",
        "inventory.ReserveStock",
    )
    assert published.type == "inventory.ReserveStock.v1"
    assert published.body == wire.body
    assert published.correlation_id == "flow-1"
    assert published.headers["causation-id"] == "msg-0"
    assert published.deliver_at is None
    assert published.published_at is None


async def test_a_message_sent_later_carries_its_queue_and_due_time(
    sessions: SessionFactory,
) -> None:
    timeout = Envelope(sample(StepTimedOut))

    before = datetime.now(UTC)
    async with UnitOfWork(sessions) as uow:
        uow.send_later(timeout, TIMER_QUEUE, timedelta(minutes=5))
        await uow.commit()
    after = datetime.now(UTC)

    row = (await outbox_rows(sessions))[timeout.message_id]
    assert row.exchange == ""
    assert row.routing_key == TIMER_QUEUE
    assert row.deliver_at is not None
    assert before + timedelta(minutes=5) <= row.deliver_at <= after + timedelta(minutes=5)


async def test_timestamps_read_back_timezone_aware_and_as_the_same_instant(
    sessions: SessionFactory,
) -> None:
    # given a message stamped in another time zone
    paris = timezone(timedelta(hours=2))
    stamped = datetime(2025, 6, 1, 14, 30, 15, 123000, tzinfo=paris)
    command = Envelope(sample(ReserveStock), timestamp=stamped)
    later = Envelope(sample(StepTimedOut))

    async with UnitOfWork(sessions) as uow:
        uow.publish(command)
        uow.send_later(later, TIMER_QUEUE, timedelta(seconds=1))
        await uow.commit()

    # then the database (SQLite drops zones) gives back aware UTC times of the same instant
    rows = await outbox_rows(sessions)
    row = rows[command.message_id]
    assert row.created_at == stamped
    assert row.created_at.utcoffset() == timedelta(0)
    for value in (row.available_at, rows[later.message_id].deliver_at):
        assert value is not None
        assert value.utcoffset() == timedelta(0)
        assert abs(value - datetime.now(UTC)) < timedelta(minutes=1)


async def test_a_handler_that_raises_leaves_neither_state_nor_messages(
    sessions: SessionFactory, database_url: str
) -> None:
    wakes = Wakes(database_url)

    # when the handler fails after adding its messages, before the commit
    with pytest.raises(HandlerFailed):
        async with UnitOfWork(sessions, on_commit=wakes) as uow:
            uow.session.add(handled("msg-0"))
            uow.publish(Envelope(sample(PlaceOrder)))
            uow.send_later(Envelope(sample(StepTimedOut)), TIMER_QUEUE, timedelta(seconds=5))
            await uow.session.flush()  # the rows reached the database inside the transaction
            raise HandlerFailed

    # then nothing was stored and the relay was not woken
    assert await outbox_rows(sessions) == {}
    assert await inbox_rows(sessions) == []
    assert wakes.count == 0


async def test_leaving_without_commit_stores_nothing(sessions: SessionFactory) -> None:
    async with UnitOfWork(sessions) as uow:
        uow.session.add(handled("msg-0"))
        uow.publish(Envelope(sample(PlaceOrder)))

    assert await outbox_rows(sessions) == {}
    assert await inbox_rows(sessions) == []


async def test_the_relay_is_woken_once_after_the_commit_and_sees_the_rows(
    sessions: SessionFactory, database_url: str
) -> None:
    wakes = Wakes(database_url)

    async with UnitOfWork(sessions, on_commit=wakes) as uow:
        uow.publish(Envelope(sample(PlaceOrder)))
        uow.publish(Envelope(sample(ReserveStock)))
        assert wakes.count == 0
        await uow.commit()

    # a wake-up before the commit would find nothing to relay
    assert wakes.visible_outbox_rows == [2]


async def test_a_commit_without_messages_does_not_wake_the_relay(
    sessions: SessionFactory, database_url: str
) -> None:
    wakes = Wakes(database_url)

    async with UnitOfWork(sessions, on_commit=wakes) as uow:
        uow.session.add(handled("msg-0"))
        await uow.commit()

    assert len(await inbox_rows(sessions)) == 1
    assert wakes.count == 0


async def test_messages_discarded_by_a_rollback_neither_persist_nor_wake_the_relay(
    sessions: SessionFactory, database_url: str
) -> None:
    wakes = Wakes(database_url)

    async with UnitOfWork(sessions, on_commit=wakes) as uow:
        uow.publish(Envelope(sample(PlaceOrder)))
        await uow.rollback()
        uow.session.add(handled("msg-0"))
        await uow.commit()

    assert await outbox_rows(sessions) == {}
    assert len(await inbox_rows(sessions)) == 1
    assert wakes.count == 0
