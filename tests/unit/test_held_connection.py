"""A connection held between a consumer's transactions: reused, never left in a transaction, and
given back when a use fails or after a quiet spell.

Proven on both SQLite drivers and on PostgreSQL, whose lost connections it must notice.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import Envelope
from contracts.orders import PlaceOrder
from outbox.db import HeldConnection, session_factory
from outbox.unit_of_work import UnitOfWork
from tests.conftest import BACKENDS, Backend
from tests.contracts.samples import sample
from workers.runtime.outages import is_infrastructure


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every backend, PostgreSQL included."""
    chosen: Backend = request.param
    return chosen


async def _commit_one(engine: AsyncEngine, held: HeldConnection) -> object:
    """One unit of work on the held connection; the connection it ran on (a new checkout is a
    new object, whichever of the pool's DBAPI connections it wraps)."""
    async with (
        held.use() as connection,
        UnitOfWork(session_factory(engine), connection=connection) as uow,
    ):
        assert connection is not None
        uow.publish(Envelope(sample(PlaceOrder)))
        await uow.commit()
    assert not connection.in_transaction()  # nothing held open between transactions
    return connection


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(text("SELECT count(*) FROM outbox_message"))).scalar_one()


async def test_transactions_share_one_connection_and_commit_for_everyone(
    engine: AsyncEngine,
) -> None:
    held = HeldConnection(engine, idle_s=60)
    first = await _commit_one(engine, held)
    second = await _commit_one(engine, held)
    assert first is second
    assert await _count(engine) == 2  # committed, seen from another connection
    await held.close()


async def test_a_writer_elsewhere_is_not_blocked_between_transactions(
    engine: AsyncEngine,
) -> None:
    held = HeldConnection(engine, idle_s=60)
    await _commit_one(engine, held)
    async with asyncio.timeout(5), engine.begin() as other:  # SQLite: BEGIN IMMEDIATE
        await other.execute(text("DELETE FROM outbox_message"))
    assert await _count(engine) == 0
    await held.close()


async def test_a_second_user_meanwhile_gets_none_and_uses_the_pool(engine: AsyncEngine) -> None:
    held = HeldConnection(engine, idle_s=60)
    async with held.use() as connection:
        assert connection is not None
        async with held.use() as meanwhile:
            assert meanwhile is None
    await held.close()


async def test_a_use_that_raises_gives_the_connection_back(engine: AsyncEngine) -> None:
    held = HeldConnection(engine, idle_s=60)
    before = await _commit_one(engine, held)
    with pytest.raises(RuntimeError):
        async with held.use() as connection:
            assert connection is not None
            await connection.execute(text("SELECT 1"))
            raise RuntimeError("the handler failed")
    assert await _commit_one(engine, held) is not before  # a fresh checkout, pinged
    await held.close()


async def test_a_quiet_spell_gives_the_connection_back(engine: AsyncEngine) -> None:
    held = HeldConnection(engine, idle_s=0)
    first = await _commit_one(engine, held)
    await asyncio.sleep(0.01)
    second = await _commit_one(engine, held)
    assert first is not second  # a fresh checkout, pinged
    await held.close()


@pytest.mark.parametrize("backend", ["postgres"])
async def test_a_connection_lost_while_held_fails_as_an_outage_once_then_is_replaced(
    engine: AsyncEngine,
) -> None:
    held = HeldConnection(engine, idle_s=60)
    async with held.use() as connection:
        assert connection is not None
        pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await connection.commit()
    async with engine.connect() as admin:
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await admin.commit()
    with pytest.raises(DBAPIError) as lost:
        await _commit_one(engine, held)
    assert is_infrastructure(lost.value)  # the consumer pauses, the message keeps its attempts
    await _commit_one(engine, held)
    assert await _count(engine) == 1
    await held.close()
