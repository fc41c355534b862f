"""The outbox relay publishes every committed row exactly once, even with two relays running.

On every backend: PostgreSQL, and SQLite on both drivers (where a lease lets one relay work).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import aio_pika
from sqlalchemy import func
from sqlmodel import col, select

from config.settings import Settings
from contracts.envelope import Envelope
from contracts.orders import OrderStatus, OrderStatusChanged
from contracts.topology import Subscription
from outbox.db import create_engine, create_tables, session_factory
from outbox.tables import MESSAGING_TABLES, OutboxMessage
from outbox.unit_of_work import UnitOfWork
from tests.conftest import Backend
from tests.support.harness import Process, wait_for
from workers.ops.management import Management
from workers.runtime.topology import apply_plan, build_plan

ROWS = 10_000


async def _fill_outbox(database_url: str) -> None:
    engine = create_engine(database_url)
    await create_tables(engine, MESSAGING_TABLES)
    sessions = session_factory(engine)
    for _ in range(ROWS // 1000):
        async with UnitOfWork(sessions) as uow:
            for _ in range(1000):
                event = OrderStatusChanged(
                    order_id=uuid.uuid4(), status=OrderStatus.PENDING, sequence=1
                )
                uow.publish(Envelope(event))
            await uow.commit()
    await engine.dispose()


async def _listen_to_a_full_outbox(
    connection: aio_pika.abc.AbstractRobustConnection,
    settings: Settings,
    database_url: str,
    service: str,
) -> tuple[Subscription, list[str]]:
    """A queue bound to the outbox's event, ROWS rows waiting, and the ids it receives."""
    listener = Subscription(service, "events", ("orders.OrderStatusChanged",))
    await apply_plan(connection, build_plan(settings, [listener]))
    await _fill_outbox(database_url)
    received: list[str] = []
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=1000)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        received.append(str(message.message_id))
        await message.ack()

    await (await channel.get_queue(listener.queue)).consume(on_message)
    return listener, received


def _relay_env(settings: Settings) -> dict[str, str]:
    return {
        "WARREN_ENV": "test",
        "WARREN_BROKER_URL": settings.amqp_url(),
        "WARREN_LOG_JSON": "false",
    }


async def _pending(database_url: str) -> int:
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        query = select(func.count()).where(col(OutboxMessage.published_at).is_(None))
        pending = int((await session.exec(query)).one())
    await engine.dispose()
    return pending


async def test_two_relays_publish_10000_rows_each_exactly_once(
    test_settings: Settings,
    database_url: str,
    backend: Backend,
    management: Management,
    rabbit_vhost: str,
) -> None:
    connection = await aio_pika.connect_robust(test_settings.amqp_url())
    async with connection:
        listener, received = await _listen_to_a_full_outbox(
            connection, test_settings, database_url, "relaytest"
        )
        env = _relay_env(test_settings)
        args = ["relay", "relaytest", "--database-url", database_url]
        relays = [Process("workers.cli", env, args=args) for _ in range(2)]
        try:
            await wait_for(
                lambda: _none_pending(database_url), timeout=120, what="the outbox to empty"
            )
            await wait_for(lambda: _at_least(received, ROWS), timeout=30, what=f"{ROWS} messages")
            await wait_for(
                lambda: _settled(management, rabbit_vhost, listener.queue),
                timeout=30,
                what="the queue to hold nothing ready or unacked",
            )
            published = [await relay.metric("warren_outbox_published_total") for relay in relays]
        finally:
            for relay in relays:
                relay.kill()
        if backend == "postgres":  # SKIP LOCKED: several relays share the rows
            assert all(count > 0 for count in published), f"both should share: {published}"
        else:  # a lease row: one relay per SQLite file, the other waits
            assert min(published) == 0, f"one relay should hold the lease: {published}"
        assert sum(published) == ROWS
    assert len(received) == ROWS
    assert len(set(received)) == ROWS


LEASE_S = 3.0


async def test_a_frozen_relay_hides_its_claimed_rows_no_longer_than_its_lease(
    test_settings: Settings,
    database_url: str,
    backend: Backend,
    management: Management,
    rabbit_vhost: str,
) -> None:
    """A relay frozen (SIGSTOP) right after claiming a batch: another publishes every row.

    On PostgreSQL the claimed rows are locked by the frozen relay's open transaction, which the
    server ends after `relay_lease_s` idle (idle_in_transaction_session_timeout); on SQLite the
    frozen relay's lease row expires.
    """
    connection = await aio_pika.connect_robust(test_settings.amqp_url())
    async with connection:
        _, received = await _listen_to_a_full_outbox(
            connection, test_settings, database_url, "frozentest"
        )
        env = _relay_env(test_settings) | {"WARREN_RELAY_LEASE_S": str(LEASE_S)}
        args = ["relay", "frozentest", "--database-url", database_url]
        frozen = Process(
            "workers.cli", env | {"WARREN_CRASHPOINTS": "relay-after-claim:freeze"}, args=args
        )
        other: Process | None = None
        try:
            await wait_for(
                lambda: asyncio.to_thread(_stopped, frozen), timeout=60, what="the relay to freeze"
            )
            assert received == [], "it froze before publishing anything"
            other = Process("workers.cli", env, args=args)
            started = time.monotonic()
            await wait_for(
                lambda: _none_pending(database_url),
                timeout=LEASE_S + 30,
                what="the other relay to publish the frozen relay's rows too",
            )
            took = time.monotonic() - started
            await wait_for(lambda: _at_least(received, ROWS), timeout=30, what=f"{ROWS} messages")
            assert await _pending(database_url) == 0
        finally:
            frozen.kill()  # SIGKILL ends a stopped process too
            if other is not None:
                other.kill()
    assert set(received) == set(await _outbox_ids(database_url))
    assert len(set(received)) == ROWS
    print(f"{backend}: every row published {took:.1f}s after the other relay started")


def _stopped(process: Process) -> bool:
    """Whether the process is stopped by a signal (state T in /proc)."""
    stat = Path(f"/proc/{process.proc.pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


async def _outbox_ids(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    async with session_factory(engine)() as session:
        ids = [str(i) for i in (await session.exec(select(OutboxMessage.id))).all()]
    await engine.dispose()
    return ids


async def _none_pending(database_url: str) -> bool:
    return await _pending(database_url) == 0


async def _at_least(items: list[str], n: int) -> bool:
    return len(items) >= n


async def _settled(management: Management, vhost: str, queue: str) -> bool:
    body = await management.on(vhost).queue(queue) or {}
    return body.get("messages") == 0 and body.get("messages_unacknowledged") == 0
