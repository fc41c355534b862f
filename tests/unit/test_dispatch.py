"""Publishing straight after the commit: at once, marked by the next transaction, the relay as
the fallback. On a real SQLite outbox (both drivers) with publishers that record or refuse."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from config.settings import Settings
from contracts.envelope import Envelope
from contracts.orders import OrderStatus, OrderStatusChanged
from outbox.db import session_factory
from outbox.relay import Relay
from outbox.tables import InboxMessage, OutboxMessage
from outbox.unit_of_work import UnitOfWork
from tests.support.fakes import RecordingPublisher


class RefusingPublisher(RecordingPublisher):
    """A broker that nacks every publish until told to confirm."""

    def __init__(self) -> None:
        super().__init__()
        self.refusing = True

    async def publish(
        self, message: aio_pika.Message, exchange: str, routing_key: str, *, timeout: float = 10.0
    ) -> Any:
        if self.refusing:
            raise ConnectionError("the broker refused the publish")
        return await super().publish(message, exchange, routing_key, timeout=timeout)


def _status() -> Envelope[OrderStatusChanged]:
    return Envelope(
        OrderStatusChanged(order_id=uuid.uuid4(), status=OrderStatus.PENDING, sequence=1)
    )


async def _commit_one(engine: AsyncEngine, relay: Relay) -> str:
    async with UnitOfWork(session_factory(engine), dispatcher=relay) as uow:
        envelope = _status()
        uow.publish(envelope)
        await uow.commit()
    return envelope.message_id


async def _published_at(engine: AsyncEngine) -> dict[str, Any]:
    async with session_factory(engine)() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    return {row.id: row.published_at for row in rows}


async def _until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


async def test_a_committed_message_is_published_at_once_and_marked_by_the_next_commit(
    engine: AsyncEngine,
) -> None:
    # given a relay that dispatches what its units of work commit
    publisher = RecordingPublisher()
    relay = Relay("billing", engine, publisher, Settings(_env_file=None))

    # when one unit of work commits a message
    first = await _commit_one(engine, relay)
    await _until(lambda: _dispatched(relay))

    # then it was published without the relay reading it back, which finds nothing due
    assert await relay.relay_once() == 0
    assert (await _published_at(engine))[first] is None
    # and the next unit of work marks it published in its own transaction
    second = await _commit_one(engine, relay)
    marks = await _published_at(engine)
    assert marks[first] is not None and marks[second] is None
    await relay.settle()
    assert all(at is not None for at in (await _published_at(engine)).values())
    assert len(publisher.sent) == 2  # each once


async def test_confirmed_rows_are_marked_on_their_own_when_no_transaction_follows(
    engine: AsyncEngine,
) -> None:
    relay = Relay("billing", engine, RecordingPublisher(), Settings(_env_file=None))

    message_id = await _commit_one(engine, relay)

    await _until(lambda: _marked(engine, message_id))


async def test_a_refused_dispatch_is_left_to_the_relay_once_it_comes_due(
    engine: AsyncEngine,
) -> None:
    # given a broker that refuses publishes, and a short hold
    publisher = RefusingPublisher()
    settings = Settings(_env_file=None, relay_publish_timeout_s=0.2)
    relay = Relay("billing", engine, publisher, settings)

    # when a message is committed and its direct publish fails
    message_id = await _commit_one(engine, relay)
    await relay.settle()
    assert publisher.sent == [] and not await _marked(engine, message_id)

    # then the relay publishes it once the hold has passed and the broker takes it again
    publisher.refusing = False
    await _until(lambda: _relayed(relay))
    assert [m.message_id for _, _, m in publisher.sent] == [message_id]
    assert await _marked(engine, message_id)


async def test_marks_of_a_transaction_that_does_not_commit_go_to_the_next(
    engine: AsyncEngine,
) -> None:
    # given a dispatched, confirmed row
    relay = Relay("billing", engine, RecordingPublisher(), Settings(_env_file=None))
    message_id = await _commit_one(engine, relay)
    await _until(lambda: _dispatched(relay))

    # when a transaction takes its mark and its commit fails (a duplicate key at the flush)
    with pytest.raises(IntegrityError):
        async with UnitOfWork(session_factory(engine), dispatcher=relay) as uow:
            uow.session.add(InboxMessage(consumer="billing", message_id="twice"))
            await uow.session.flush()
            uow.session.expunge_all()
            uow.session.add(InboxMessage(consumer="billing", message_id="twice"))
            await uow.commit()  # the marks are written, then the flush fails
    assert not await _marked(engine, message_id)

    # then the next transaction marks it
    await _commit_one(engine, relay)
    assert await _marked(engine, message_id)


async def _marked(engine: AsyncEngine, message_id: str) -> bool:
    return (await _published_at(engine)).get(message_id) is not None


async def _relayed(relay: Relay) -> bool:
    return await relay.relay_once() == 1


async def _dispatched(relay: Relay) -> bool:
    return bool(relay._confirmed)
