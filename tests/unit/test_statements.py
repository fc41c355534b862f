"""The runtime's statements on the DBAPI cursor store what SQLAlchemy's own path stores, and fail
as it fails; on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from outbox.db import create_tables, session_factory
from outbox.statements import (
    ADD_TO_OUTBOX,
    CLAIM_INBOX,
    MARK_PUBLISHED,
    KeyedRows,
    Prepared,
    loaded,
    marks,
)
from outbox.tables import MESSAGING_TABLES, OUTBOX, UtcDateTime
from tests.conftest import BACKENDS, Backend
from workers.payments.model import PaymentStatus
from workers.payments.tables import PAYMENT_TABLES, Payment


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    return chosen


def _row(row_id: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": row_id,
        "exchange": "orders.events",
        "routing_key": "orders.OrderStatusChanged",
        "deliver_at": now + timedelta(seconds=5) if row_id.endswith("later") else None,
        "type": "orders.OrderStatusChanged.v1",
        "correlation_id": None,
        "headers": {"causation-id": "m-0", "nested": {"n": 1}},
        "body": b'{"order_id": "x"}',
        "created_at": now.astimezone(),  # a local zone: stored as the same instant
        "available_at": now,
        "attempts": 0,
    }


async def test_outbox_rows_read_back_as_sqlalchemy_wrote_them(engine: AsyncEngine) -> None:
    await create_tables(engine, MESSAGING_TABLES)
    ours = [_row("ours-1"), _row("ours-later")]
    theirs = [_row("theirs-1"), _row("theirs-later")]
    async with session_factory(engine)() as session:
        await session.run_sync(ADD_TO_OUTBOX.execute_in, ours)
        await session.exec(insert(OUTBOX), params=theirs)
        await session.commit()
        stored = {r.id: r for r in (await session.exec(select(OUTBOX))).all()}  # type: ignore[call-overload]

    for mine, reference in zip(ours, theirs, strict=True):
        a, b = stored[mine["id"]], stored[reference["id"]]
        assert a.created_at == mine["created_at"] and a.created_at.utcoffset() == timedelta(0)
        for column in OUTBOX.columns:
            if column.name not in ("id", "created_at", "available_at", "deliver_at"):
                assert getattr(a, column.name) == getattr(b, column.name), column.name
        assert (a.deliver_at is None) == (b.deliver_at is None)


async def test_a_second_claim_fails_as_an_integrity_error_and_rolls_back(
    engine: AsyncEngine,
) -> None:
    await create_tables(engine, MESSAGING_TABLES)
    claim = {"consumer": "billing", "message_id": "m-1", "processed_at": datetime.now(UTC)}
    async with session_factory(engine)() as session:
        await session.run_sync(CLAIM_INBOX.execute_in, [claim])
        await session.commit()

    async with session_factory(engine)() as session:
        with pytest.raises(IntegrityError):
            await session.run_sync(CLAIM_INBOX.execute_in, [claim, {**claim, "message_id": "m-2"}])
        await session.rollback()
        # the session is usable again, and nothing of the failed claim stayed
        await session.run_sync(CLAIM_INBOX.execute_in, [{**claim, "message_id": "m-3"}])
        await session.commit()


async def test_marks_set_the_published_time_of_each_row(engine: AsyncEngine) -> None:
    await create_tables(engine, MESSAGING_TABLES)
    async with session_factory(engine)() as session:
        await session.run_sync(ADD_TO_OUTBOX.execute_in, [_row("a"), _row("b"), _row("c")])
        await session.run_sync(MARK_PUBLISHED.execute_in, marks(["a", "c"]))
        await session.commit()
        rows = (await session.exec(select(OUTBOX.c.id, OUTBOX.c.published_at))).all()  # type: ignore[call-overload]
    published = {row_id: at for row_id, at in rows}
    assert published["b"] is None
    for row_id in ("a", "c"):
        assert abs(published[row_id] - datetime.now(UTC)) < timedelta(minutes=1)


async def test_a_statement_run_in_a_session_says_how_many_rows_it_changed(
    engine: AsyncEngine,
) -> None:
    await create_tables(engine, MESSAGING_TABLES)
    async with session_factory(engine)() as session:
        await session.run_sync(ADD_TO_OUTBOX.execute_in, [_row("a"), _row("b")])

        # one row matches, then none (it is marked already, the statement's own condition)
        at = datetime.now(UTC)
        assert await MARK_ONCE.run(session, {"row_id": "a", "at": at, "extra": "not sent"}) == 1
        assert await MARK_ONCE.run(session, {"row_id": "a", "at": at}) == 0
        assert await MARK_ONCE.run(session, {"row_id": "missing", "at": at}) == 0
        await session.commit()
        marked = (
            await session.exec(select(OUTBOX.c.id).where(OUTBOX.c.published_at.is_not(None)))
        ).all()  # type: ignore[call-overload]
    assert [row_id for (row_id,) in marked] == ["a"]


MARK_ONCE = Prepared(
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("row_id"), OUTBOX.c.published_at.is_(None))
    .values(published_at=bindparam("at", type_=UtcDateTime())),
    ("row_id", "at"),
)


async def test_keyed_rows_read_insert_and_update_as_the_orm_would(engine: AsyncEngine) -> None:
    await create_tables(engine, PAYMENT_TABLES)
    payments = KeyedRows(Payment)
    order_id = uuid4()
    async with session_factory(engine)() as session:
        assert await payments.get(session, order_id) is None
        row = Payment(
            order_id=order_id, status=PaymentStatus.CAPTURED, payment_id="p-1", amount_cents=500
        )
        await payments.add(session, row)  # created_at left to the column's default
        row.status, row.refund_reason = PaymentStatus.REFUNDED, "changed mind"
        row.amount_cents = 1  # not among the columns written back below
        await payments.update(session, row, "status", "refund_reason")
        await session.commit()
    async with session_factory(engine)() as session:
        read = await payments.get(session, order_id)
        orm = await session.get(Payment, order_id)

    assert read is not None and orm is not None
    assert (read.status, read.refund_reason, read.amount_cents) == (
        PaymentStatus.REFUNDED,
        "changed mind",
        500,
    )
    assert read.order_id == orm.order_id == order_id and read.created_at == orm.created_at
    assert read.created_at is not None and read.created_at.utcoffset() == timedelta(0)
    assert read.model_dump() == orm.model_dump()
    async with session_factory(engine)() as session:
        with pytest.raises(IntegrityError):
            await payments.add(session, Payment(order_id=order_id, status=PaymentStatus.VOIDED))


def test_a_loaded_row_is_the_instance_its_constructor_would_build() -> None:
    values = {
        "order_id": uuid4(),
        "status": PaymentStatus.CAPTURED,
        "payment_id": "p-1",
        "amount_cents": 500,
        "refund_reason": None,
        "created_at": datetime.now(UTC),
    }
    partial = loaded(Payment, values)  # fields left out: the constructor's defaults fill them
    assert partial.model_dump() == Payment(**values).model_dump()
    values |= {"token": "t-1", "currency": "EUR", "decline_reason": None}  # a whole row
    built, read = Payment(**values), loaded(Payment, values)

    assert type(read) is Payment and read == built
    assert read.model_dump() == built.model_dump()
    assert read.model_fields_set == built.model_fields_set
    read.status = PaymentStatus.REFUNDED  # it changes like any instance
    assert read.status is PaymentStatus.REFUNDED and built.status is PaymentStatus.CAPTURED
