"""Retention: published outbox rows and old inbox rows go; pending rows stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from config.settings import Settings
from outbox.db import session_factory
from outbox.retention import RetentionJob
from outbox.tables import InboxMessage, OutboxMessage, utcnow

OUTBOX_HOURS = 24.0
INBOX_HOURS = 72.0


@pytest.fixture
def job(engine: AsyncEngine) -> RetentionJob:
    settings = Settings(
        _env_file=None, outbox_retention_hours=OUTBOX_HOURS, inbox_retention_hours=INBOX_HOURS
    )
    return RetentionJob("billing", engine, settings)


def outbox_row(
    row_id: str, *, created_hours_ago: float, published_hours_ago: float | None
) -> OutboxMessage:
    now = utcnow()
    created = now - timedelta(hours=created_hours_ago)
    published = None if published_hours_ago is None else now - timedelta(hours=published_hours_ago)
    return OutboxMessage(
        id=row_id,
        exchange="orders.events",
        routing_key="orders.OrderStatusChanged",
        type="orders.OrderStatusChanged.v1",
        body=b"{}",
        created_at=created,
        available_at=created,
        published_at=published,
    )


def inbox_row(message_id: str, *, hours_ago: float) -> InboxMessage:
    return InboxMessage(
        consumer="billing.invoices",
        message_id=message_id,
        processed_at=utcnow() - timedelta(hours=hours_ago),
    )


async def store(engine: AsyncEngine, *rows: OutboxMessage | InboxMessage) -> None:
    async with session_factory(engine)() as session:
        session.add_all(rows)
        await session.commit()


async def remaining(engine: AsyncEngine) -> tuple[set[str], set[str]]:
    async with session_factory(engine)() as session:
        outbox = {row.id for row in (await session.exec(select(OutboxMessage))).all()}
        inbox = {row.message_id for row in (await session.exec(select(InboxMessage))).all()}
    return outbox, inbox


async def test_expired_rows_are_deleted_and_everything_else_is_kept(
    engine: AsyncEngine, job: RetentionJob
) -> None:
    # given published, pending and handled rows of various ages
    await store(
        engine,
        outbox_row("published-long-ago", created_hours_ago=100, published_hours_ago=99),
        outbox_row("published-just-expired", created_hours_ago=26, published_hours_ago=25),
        outbox_row("published-recently", created_hours_ago=30, published_hours_ago=23),
        outbox_row("pending-ancient", created_hours_ago=10_000, published_hours_ago=None),
        outbox_row("pending-new", created_hours_ago=0, published_hours_ago=None),
        inbox_row("handled-long-ago", hours_ago=200),
        inbox_row("handled-just-expired", hours_ago=73),
        inbox_row("handled-recently", hours_ago=71),
    )

    # when retention runs
    deleted = await job.run()

    # then only published rows past their retention and old inbox rows are gone
    assert deleted == (2, 2)
    outbox, inbox = await remaining(engine)
    assert outbox == {"published-recently", "pending-ancient", "pending-new"}
    assert inbox == {"handled-recently"}


async def test_an_unpublished_row_is_never_deleted_whatever_its_age(
    engine: AsyncEngine, job: RetentionJob
) -> None:
    # given a row the relay has been failing to publish for a year
    await store(engine, outbox_row("stuck", created_hours_ago=24 * 365, published_hours_ago=None))

    assert await job.run() == (0, 0)
    assert await remaining(engine) == ({"stuck"}, set())


async def test_running_again_deletes_nothing_more(engine: AsyncEngine, job: RetentionJob) -> None:
    await store(
        engine,
        outbox_row("old", created_hours_ago=50, published_hours_ago=48),
        inbox_row("old", hours_ago=100),
    )

    assert await job.run() == (1, 1)
    assert await job.run() == (0, 0)


async def test_the_retention_hours_come_from_the_settings(engine: AsyncEngine) -> None:
    # given a shorter outbox retention than the row's age
    short = Settings(_env_file=None, outbox_retention_hours=1, inbox_retention_hours=1)
    await store(
        engine,
        outbox_row("two-hours", created_hours_ago=3, published_hours_ago=2),
        inbox_row("two-hours", hours_ago=2),
    )

    assert await RetentionJob("billing", engine, short).run() == (1, 1)
