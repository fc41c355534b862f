"""Replay dead letters to their original destination, confirmed before the DLQ copy is acked.

One message at a time: take it (unacked), and if it matches, publish a marked copy with confirms
and `mandatory`, then ack it. Messages that do not match stay in the DLQ in their order
(`dlq_scan` knows how for each queue type). A replay killed at any point loses nothing: a message
is either still in the DLQ or its copy was confirmed (perhaps both: consumers dedupe by
`message_id`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from aiormq.exceptions import AMQPError, ChannelInvalidStateError, PublishError

from config.settings import Settings
from outbox.amqp import persistent_copy
from workers.ops.dead_letter import FAILURE_HEADERS, DeadLetter, Filters, count
from workers.ops.dlq_scan import DlqScan, open_connection
from workers.runtime.failures import RETRY_ATTEMPT

__all__ = ["REPLAYED_AT", "REPLAY_COUNT", "ReplayError", "ReplayReport", "replay"]

REPLAYED_AT = "replayed-at"
REPLAY_COUNT = "replay-count"
PUBLISH_TIMEOUT_S = 10.0
TOPOLOGY_HINT = "`warren topology check` compares the broker with the plan"


@dataclass(slots=True)
class ReplayReport:
    """What a replay did: `scanned` of the `depth` messages the DLQ held when it started."""

    queue: str
    depth: int
    dry_run: bool
    scanned: int = 0
    matched: list[DeadLetter] = field(default_factory=list)
    replayed: int = 0


class ReplayError(RuntimeError):
    """A copy could not be republished; the message is still in the DLQ."""

    def __init__(self, message: str, report: ReplayReport) -> None:
        super().__init__(message)
        self.report = report


Progress = Callable[[ReplayReport], None]


def destination(letter: DeadLetter) -> tuple[str, str]:
    """Where a dead letter first went: its exchange and routing key, else straight to its queue."""
    if letter.original_exchange and letter.original_routing_key:
        return letter.original_exchange, letter.original_routing_key
    if letter.original_queue:
        return "", letter.original_queue
    raise LookupError("it names no original exchange, routing key or queue")


def replay_headers(headers: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The headers minus the broker's and the failure's, marked as replayed, retries reset."""
    kept = {k: v for k, v in headers.items() if not k.startswith("x-") and k not in FAILURE_HEADERS}
    return kept | {
        REPLAYED_AT: now.isoformat(timespec="milliseconds"),
        REPLAY_COUNT: count(headers.get(REPLAY_COUNT)) + 1,
        RETRY_ATTEMPT: 0,
    }


def replay_copy(message: AbstractIncomingMessage, now: datetime) -> aio_pika.Message:
    """The same body, properties and message id, persistent, with replay headers."""
    return persistent_copy(message, replay_headers(message.headers or {}, now))


class _Pacer:
    """Spaces publishes at most `rate` per second."""

    def __init__(self, rate: float | None) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._last = float("-inf")

    async def wait(self) -> None:
        delay = self._last + self._interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self._last = time.monotonic()


class _Publisher:
    """Confirmed, mandatory publishes on one channel; exchanges looked up once."""

    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._exchanges: dict[str, AbstractExchange] = {"": channel.default_exchange}

    async def publish(self, message: aio_pika.Message, exchange: str, routing_key: str) -> None:
        target = self._exchanges.get(exchange)
        if target is None:
            target = await self._channel.get_exchange(exchange, ensure=False)
            self._exchanges[exchange] = target
        await target.publish(message, routing_key, mandatory=True, timeout=PUBLISH_TIMEOUT_S)


@dataclass(slots=True)
class _Replay:
    scan: DlqScan
    publisher: _Publisher
    report: ReplayReport
    filters: Filters
    limit: int | None
    pacer: _Pacer

    async def run(self) -> None:
        while (message := await self.scan.next()) is not None:
            letter = DeadLetter.parse(message)
            if self.filters.matches(letter):
                self.report.matched.append(letter)
                if not self.report.dry_run:
                    await self._replay_one(message, letter)
            if self.limit is not None and len(self.report.matched) >= self.limit:
                return

    async def _replay_one(self, message: AbstractIncomingMessage, letter: DeadLetter) -> None:
        try:
            exchange, routing_key = destination(letter)
        except LookupError as exc:
            why = f"{exc}; purge it or republish it by hand"
            raise ReplayError(self._explain(letter, why), self.report) from None
        await self.pacer.wait()
        try:
            copy = replay_copy(message, datetime.now(UTC))
            await self.publisher.publish(copy, exchange, routing_key)
        except PublishError:
            why = f"exchange {exchange!r} routes {routing_key!r} to no queue; {TOPOLOGY_HINT}"
            raise ReplayError(self._explain(letter, why), self.report) from None
        except (AMQPError, ChannelInvalidStateError, TimeoutError) as exc:
            why = f"{exc or type(exc).__name__}; {TOPOLOGY_HINT}"
            raise ReplayError(self._explain(letter, why), self.report) from exc
        await self.scan.remove(message)
        self.report.replayed += 1

    def _explain(self, letter: DeadLetter, why: str) -> str:
        return (
            f"could not replay message {letter.message_id} from {self.report.queue}: {why}. "
            f"It is still in {self.report.queue}; {self.report.replayed} message(s) were "
            "replayed before it."
        )


async def replay(
    settings: Settings,
    queue: str,
    filters: Filters = Filters(),
    *,
    limit: int | None = None,
    rate: float | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ReplayReport:
    """Replay the matching dead letters of `queue`, head first, at most `limit` of them."""
    report = ReplayReport(queue=queue, depth=0, dry_run=dry_run)

    def walked(taken: int, depth: int) -> None:
        report.scanned, report.depth = taken, depth
        if progress is not None:
            progress(report)

    connection = await open_connection(settings)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        async with DlqScan(settings, connection, queue, on_take=walked) as scan:
            report.depth = scan.depth
            job = _Replay(scan, _Publisher(channel), report, filters, limit, _Pacer(rate))
            await job.run()
    return report
