"""A dead letter as an operator sees it, and the filters that select dead letters.

Our runtime's dead letters carry failure headers (`workers/runtime/failures.py`); a message the
broker dead-lettered at the delivery-limit carries only `x-death`: both read the same here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from contracts.topology import is_delay

__all__ = ["FAILURE_HEADERS", "DeadLetter", "Filters", "count", "parse_when"]

PREVIEW_CHARS = 160
FAILURE_HEADERS = frozenset(
    {
        "failure-reason",
        "exception-type",
        "exception-message",
        "stack-trace",
        "original-exchange",
        "original-routing-key",
        "original-queue",
        "attempts",
        "first-failure-at",
        "last-failure-at",
        "worker",
    }
)
BROKER_REASONS = {"delivery_limit": "crash-loop"}
_VERSIONED = re.compile(r"^(?P<name>.+)\.v\d+$")
_RELATIVE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def count(value: Any) -> int:
    """A counter header as an int; anything unreadable counts as 0."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _time(value: Any) -> datetime | None:
    if isinstance(value, bytes | str):
        try:
            value = datetime.fromisoformat(_text(value) or "")
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    """The `x-death` entry of the first dead-lettering out of a work queue.

    Entries are most recent first. A message that waited in the delay levels (a retry, a timer)
    was dead-lettered by each level's TTL ("expired") before it reached its queue: those entries
    say where it waited, not why it died, so they are passed over.
    """
    deaths = [d for d in headers.get("x-death") or [] if isinstance(d, Mapping)]
    real = [d for d in deaths if not is_delay(_text(d.get("queue")) or "")] or deaths
    queue = _text(headers.get("x-first-death-queue"))
    return next((d for d in real if _text(d.get("queue")) == queue), real[-1] if real else {})


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message in a DLQ, whether our runtime or the broker's delivery-limit put it there."""

    message_id: str | None
    type: str | None
    reason: str
    exception_type: str | None
    exception_message: str | None
    attempts: int | None
    first_failure_at: datetime | None
    last_failure_at: datetime | None
    original_exchange: str | None
    original_routing_key: str | None
    original_queue: str | None
    body_preview: str
    timestamp: datetime | None
    replay_count: int = 0

    @classmethod
    def parse(cls, message: AbstractIncomingMessage) -> DeadLetter:
        """Read our failure headers, falling back to the broker's `x-death` ones."""
        headers = message.headers or {}
        death = _first_death(headers)
        queue = _text(headers.get("original-queue", death.get("queue")))
        exchange = _text(headers.get("original-exchange", death.get("exchange")))
        routing_key = _text(
            headers.get("original-routing-key", (death.get("routing-keys") or [None])[0])
        )
        if exchange is not None and is_delay(exchange):  # it reached its queue through a delay
            exchange, routing_key = "", queue
        broker_reason = (
            _text(death.get("reason")) or _text(headers.get("x-first-death-reason")) or "unknown"
        )
        # Not `x-delivery-count`: in a quorum DLQ it counts our own peeks, not the failures.
        attempts = headers.get("attempts")
        return cls(
            message_id=message.message_id,
            type=message.type,
            reason=_text(headers.get("failure-reason"))
            or BROKER_REASONS.get(broker_reason, broker_reason),
            exception_type=_text(headers.get("exception-type")),
            exception_message=_text(headers.get("exception-message")),
            attempts=int(attempts) if isinstance(attempts, int) else None,
            first_failure_at=_time(headers.get("first-failure-at") or death.get("time")),
            last_failure_at=_time(headers.get("last-failure-at") or death.get("time")),
            original_exchange=exchange,
            original_routing_key=routing_key,
            original_queue=queue,
            body_preview=message.body[:PREVIEW_CHARS].decode(errors="replace"),
            timestamp=_time(message.timestamp),
            replay_count=count(headers.get("replay-count")),
        )

    @property
    def failed_at(self) -> datetime | None:
        """When it was dead-lettered (its last failure), else when it was sent."""
        return self.last_failure_at or self.timestamp


@dataclass(frozen=True, slots=True)
class Filters:
    """Which dead letters an operation applies to; empty filters match everything."""

    ids: frozenset[str] = frozenset()
    type: str | None = None
    reason: str | None = None
    exception: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        """Whether `letter` passes every filter that is set."""
        failed = letter.failed_at
        return all(
            (
                not self.ids or letter.message_id in self.ids,
                self.type is None or self.type in _type_names(letter.type),
                self.reason is None or letter.reason == self.reason,
                self.exception is None or letter.exception_type == self.exception,
                self.since is None or (failed is not None and failed >= self.since),
                self.until is None or (failed is not None and failed <= self.until),
            )
        )


def _type_names(type_name: str | None) -> set[str]:
    """`orders.PlaceOrder.v2` matches both itself and `orders.PlaceOrder`."""
    if type_name is None:
        return set()
    versioned = _VERSIONED.match(type_name)
    return {type_name, versioned["name"]} if versioned else {type_name}


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (UTC when it names no zone) or an age like `10m`, `2h`, `3d`."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        delta = timedelta(**{_UNITS[relative["unit"]]: float(relative["n"])})
        return (now or datetime.now(UTC)) - delta
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 time (2025-05-01T12:00Z) nor an age (10m, 2h, 3d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
