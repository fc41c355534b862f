"""The relay: publishes committed outbox rows with confirms, then marks them.

PostgreSQL: rows are claimed with `FOR UPDATE SKIP LOCKED`, so several relays may run.
SQLite: it ignores SKIP LOCKED, so one relay per database file holds a lease row.
A crash between the confirm and the mark publishes a row again: consumers absorb it.

See `docs/architecture.md`, "Outbox and inbox".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from aiormq.exceptions import AMQPConnectionError, ChannelInvalidStateError, PublishError
from loguru import logger
from sqlalchemy import Row, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings
from contracts.topology import delay_target
from outbox.amqp import ConfirmedPublisher, amqp_message, connection_name
from outbox.backoff import retry_delay
from outbox.crashpoints import crashpoint
from outbox.db import is_sqlite, session_factory
from outbox.db import rows as fetch
from outbox.metrics import (
    OUTBOX_OLDEST_AGE,
    OUTBOX_PENDING,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_PUBLISH_SECONDS,
    OUTBOX_PUBLISHED,
    RELAY_PAUSED,
)
from outbox.retention import RetentionJob
from outbox.statements import MARK_PUBLISHED, marks
from outbox.tables import OUTBOX, OutboxMessage, RelayLease, UtcDateTime, utcnow
from outbox.unroutable import Unroutable, report_unroutable

LEASE_NAME = "relay"
# Dispatched rows are marked published by the next unit of work that commits, or after this.
MARK_AFTER_S = 1.0
# A failed row waits 0.5-1 s, then twice as long each time, at most a minute; the relay loop
# itself, after an outage of the broker or database, at most 5 s (it is paused meanwhile).
ROW_BACKOFF_BASE_S, ROW_BACKOFF_CAP_S, LOOP_BACKOFF_CAP_S = 1.0, 60.0, 5.0

# Built once, run with parameters (see outbox.db.rows).
_DUE = (
    select(OUTBOX)
    .where(OUTBOX.c.published_at.is_(None), OUTBOX.c.available_at <= bindparam("now"))
    .order_by(OUTBOX.c.created_at)
    .limit(bindparam("limit"))
)
_DUE_SKIP_LOCKED = _DUE.with_for_update(skip_locked=True)
_MARK = (
    update(OUTBOX)
    .where(OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
    .values(published_at=bindparam("at", type_=UtcDateTime()))
)


class NotDueYet(Exception):
    """A delayed row whose due time is beyond what the delay levels can hold; publish later."""

    def __init__(self, publish_at: datetime) -> None:
        super().__init__(f"due beyond the longest delay; publish at {publish_at.isoformat()}")
        self.publish_at = publish_at


class Relay:
    """Moves one database's outbox to RabbitMQ; `wake()` after a commit, polling otherwise.

    As a `Dispatcher` (`outbox.unit_of_work`), it also publishes rows handed to it straight after
    their commit (no read back); the next unit of work marks the confirmed ones published in its
    own transaction (or the relay does, in one of its own, after `MARK_AFTER_S`). Rows it could
    not publish, or not mark, it takes up again once they come due, like any other row.
    """

    def __init__(
        self,
        service: str,
        engine: AsyncEngine,
        publisher: ConfirmedPublisher,
        settings: Settings,
    ) -> None:
        self.service = service
        self._engine = engine
        self._sessions = session_factory(engine)
        self._publisher = publisher
        self._settings = settings
        self._wake = asyncio.Event()
        self._holder = connection_name(f"{service}-relay")
        self._lease_until = 0.0
        self._retention = RetentionJob(service, engine, settings)
        self.paused = False  # backing off after a failed round (database or broker down)
        self._dispatching: set[asyncio.Task[None]] = set()
        self._confirmed: list[str] = []  # dispatched, confirmed, not yet marked published
        self._mark_later: asyncio.TimerHandle | None = None

    @property
    def hold(self) -> timedelta:
        """How long a dispatched row is left to its direct publish before the relay takes it."""
        return timedelta(seconds=self._settings.relay_publish_timeout_s)

    def dispatch(self, rows: Sequence[dict[str, Any]]) -> None:
        """Publish rows just committed (with `available_at` = commit + `hold`), then mark them."""
        self._track(self._dispatch([SimpleNamespace(**row) for row in rows]))

    async def _dispatch(self, rows: list[SimpleNamespace]) -> None:
        outcomes = await self._publish_all(rows)
        crashpoint("relay-after-confirm")
        published = [row.id for row, outcome in zip(rows, outcomes, strict=True) if outcome is None]
        if len(published) < len(rows):  # the relay publishes them when they come due
            self.wake()
        self._confirmed += published
        if self._confirmed and self._mark_later is None:  # unless a transaction takes them first
            self._mark_later = asyncio.get_running_loop().call_later(
                MARK_AFTER_S, lambda: self._track(self._mark_alone())
            )

    def _track(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._dispatching.add(task)
        task.add_done_callback(self._dispatching.discard)

    def take_confirmed(self) -> list[str]:
        """The rows confirmed so far, for the caller's transaction to mark published; it gives
        them back (`give_back`) if that transaction does not commit."""
        ids, self._confirmed = self._confirmed, []
        return ids

    def give_back(self, ids: Sequence[str]) -> None:
        """Confirmed rows whose marks were not committed: the next transaction takes them."""
        self._confirmed.extend(ids)

    async def _mark_alone(self) -> None:
        """Mark what no transaction took, in a transaction of its own."""
        self._mark_later = None
        ids = self.take_confirmed()
        if not ids:  # the workers' own transactions took them
            return
        try:
            async with self._sessions() as session:
                await session.run_sync(_mark_and_commit, ids)
        except Exception as exc:  # published again when due: the consumers' inboxes absorb it
            self.give_back(ids)
            logger.warning("relay {} could not mark its published rows: {}", self.service, exc)

    async def settle(self) -> None:
        """Wait for every dispatched row to be published, then mark what is confirmed."""
        while self._dispatching:
            await asyncio.gather(*self._dispatching, return_exceptions=True)
        if self._mark_later is not None:
            self._mark_later.cancel()
        await self._mark_alone()

    def wake(self) -> None:
        """Look at the outbox now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set; failures back off with jitter and are retried forever."""
        failures = 0
        last_stats = 0.0
        while not stop.is_set():
            try:
                published = await self.relay_once()
                if time.monotonic() - last_stats > self._settings.relay_poll_interval_s:
                    await self.record_stats()
                    await self._retention.maybe_run()
                    last_stats = time.monotonic()
                if failures:
                    logger.warning(
                        "relay {} resumed after {} failed rounds", self.service, failures
                    )
                    RELAY_PAUSED.labels(self.service).set(0)
                failures, self.paused = 0, False
            except Exception as exc:  # the relay must outlive any broker or database outage
                failures += 1
                if failures == 1:
                    logger.warning(
                        "relay {} paused: {}: {}", self.service, type(exc).__name__, str(exc)[:200]
                    )
                RELAY_PAUSED.labels(self.service).set(1)
                self.paused = True
                await _sleep_or_stop(
                    stop, retry_delay(failures, base_s=ROW_BACKOFF_BASE_S, cap_s=LOOP_BACKOFF_CAP_S)
                )
                continue
            if published < self._settings.relay_batch_size:
                await self._wait_for_work(stop)

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        stop_wait = asyncio.ensure_future(stop.wait())
        wake_wait = asyncio.ensure_future(self._wake.wait())
        await asyncio.wait(
            {stop_wait, wake_wait},
            timeout=self._settings.relay_poll_interval_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        stop_wait.cancel()
        wake_wait.cancel()
        self._wake.clear()

    async def relay_once(self) -> int:
        """Publish one batch of due rows; the number published."""
        if is_sqlite(self._engine):
            return await self._relay_with_lease()
        return await self._relay_skip_locked()

    def _due_params(self) -> dict[str, Any]:
        """The parameters of `_DUE`: rows available now, one batch of them."""
        return {"now": utcnow(), "limit": self._settings.relay_batch_size}

    async def _relay_skip_locked(self) -> int:
        async with self._sessions() as session, session.begin():
            rows = list((await fetch(session, _DUE_SKIP_LOCKED, self._due_params())).all())
            if not rows:
                return 0
            crashpoint("relay-after-claim")
            outcomes = await self._publish_all(rows)
            crashpoint("relay-after-confirm")
            await _record(session, rows, outcomes)
        _raise_if_broker_away(outcomes)
        return sum(o is None for o in outcomes)

    async def _relay_with_lease(self) -> int:
        if not await self._hold_lease():
            return 0
        async with self._sessions() as session:
            rows = list((await fetch(session, _DUE, self._due_params())).all())
            await session.commit()
        if not rows:
            return 0
        crashpoint("relay-after-claim")
        outcomes = await self._publish_all(rows)
        crashpoint("relay-after-confirm")
        async with self._sessions() as session:
            await _record(session, rows, outcomes)
            await session.commit()
        _raise_if_broker_away(outcomes)
        return sum(o is None for o in outcomes)

    async def _hold_lease(self) -> bool:
        now = time.time()
        if self._lease_until - now > self._settings.relay_lease_s / 2:
            return True
        until = utcnow() + timedelta(seconds=self._settings.relay_lease_s)
        async with self._sessions() as session:
            taken = await session.exec(
                update(RelayLease)
                .where(col(RelayLease.name) == LEASE_NAME)
                .where(
                    or_(
                        col(RelayLease.holder) == self._holder,
                        col(RelayLease.expires_at) < utcnow(),
                    )
                )
                .values(holder=self._holder, expires_at=until)
            )
            if taken.rowcount == 0 and await session.get(RelayLease, LEASE_NAME) is None:
                session.add(RelayLease(name=LEASE_NAME, holder=self._holder, expires_at=until))
            elif taken.rowcount == 0:
                await session.commit()
                return False
            try:
                await session.commit()
            except IntegrityError:
                return False
        self._lease_until = until.timestamp()
        return True

    async def _publish_all(self, rows: Sequence[Any]) -> list[BaseException | None]:
        results = await asyncio.gather(
            *(self._publish(row) for row in rows), return_exceptions=True
        )
        return [r if isinstance(r, BaseException) else None for r in results]

    async def _publish(self, row: Any) -> None:
        """Publish one outbox row (a database row, or a dispatched row's namespace)."""
        exchange, routing_key = row.exchange, row.routing_key
        if row.deliver_at is not None:
            remaining_ms = int((row.deliver_at - utcnow()).total_seconds() * 1000)
            longest_ms = self._settings.delay_unit_ms * (2**self._settings.delay_levels - 1)
            if remaining_ms > longest_ms:
                raise NotDueYet(row.deliver_at - timedelta(milliseconds=longest_ms))
            exchange, routing_key = delay_target(
                max(0, remaining_ms),
                row.routing_key,
                self._settings.delay_unit_ms,
                self._settings.delay_levels,
            )
        message = amqp_message(
            body=row.body,
            type=row.type,
            message_id=row.id,
            correlation_id=row.correlation_id,
            timestamp=row.created_at,
            headers=row.headers,
            app_id=self.service,
        )
        started = time.perf_counter()
        try:
            await self._publisher.publish(
                message, exchange, routing_key, timeout=self._settings.relay_publish_timeout_s
            )
        except PublishError as exc:
            OUTBOX_PUBLISH_FAILURES.labels(self.service, Unroutable.__name__).inc()
            returned = Unroutable(exchange, routing_key)
            raise report_unroutable(self.service, row.id, row.type, returned) from exc
        except Exception as exc:
            OUTBOX_PUBLISH_FAILURES.labels(self.service, type(exc).__name__).inc()
            raise
        OUTBOX_PUBLISH_SECONDS.labels(self.service).observe(time.perf_counter() - started)
        OUTBOX_PUBLISHED.labels(self.service).inc()

    async def record_stats(self) -> tuple[int, float]:
        """Refresh the pending-rows and oldest-age gauges; returns them."""
        async with self._sessions() as session:
            count, oldest = (
                await fetch(
                    session,
                    select(func.count(), func.min(OUTBOX.c.created_at)).where(
                        OUTBOX.c.published_at.is_(None)
                    ),
                )
            ).one()
            await session.commit()
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        OUTBOX_PENDING.labels(self.service).set(count)
        OUTBOX_OLDEST_AGE.labels(self.service).set(age)
        return count, age


class BrokerAway(Exception):
    """Publishes failed because the broker is out of reach: the relay pauses, rows keep waiting."""


# The broker is out of reach (not a refusal of this message): no row's attempts count.
_AWAY = (TimeoutError, OSError, AMQPConnectionError, ChannelInvalidStateError)


def _is_away(outcome: BaseException | None) -> bool:
    return isinstance(outcome, _AWAY)


def _raise_if_broker_away(outcomes: Sequence[BaseException | None]) -> None:
    """After the round is recorded: a publish the broker never got pauses the whole relay."""
    away = next((o for o in outcomes if _is_away(o)), None)
    if away is not None:
        raise BrokerAway(f"{type(away).__name__}: {away}"[:200]) from away


def _mark_and_commit(session: Session, ids: Sequence[str]) -> None:
    MARK_PUBLISHED.execute(session.connection(), marks(ids))
    session.commit()


async def _record(
    session: AsyncSession,
    rows: Sequence[Row[*tuple[Any, ...]]],
    outcomes: Sequence[BaseException | None],
) -> None:
    """Mark the confirmed rows published in one statement; reschedule the refused one by one.

    A row whose publish never reached the broker (connection lost, no confirm in time) is left
    as it was: the relay pauses instead (`BrokerAway`), and the row counts no attempt.
    """
    published = [row.id for row, outcome in zip(rows, outcomes, strict=True) if outcome is None]
    if published:
        await session.exec(_MARK, params={"ids": published, "at": utcnow()})
    for row, outcome in zip(rows, outcomes, strict=True):
        if outcome is not None and not _is_away(outcome):
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id)
                .values(**_retry(row, outcome))
            )


def _retry(row: Row[*tuple[Any, ...]], outcome: BaseException) -> dict[str, Any]:
    """When and how a row that was not published is tried again."""
    if isinstance(outcome, NotDueYet):
        return {"available_at": outcome.publish_at}
    attempts = row.attempts + 1
    delay_s = retry_delay(attempts, base_s=ROW_BACKOFF_BASE_S, cap_s=ROW_BACKOFF_CAP_S)
    return {
        "attempts": attempts,
        "last_error": f"{type(outcome).__name__}: {outcome}"[:1000],
        "available_at": utcnow() + timedelta(seconds=delay_s),
    }


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
