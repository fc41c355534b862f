"""The headers a failed message carries into a retry or a dead-letter queue.

Our headers never start with `x-`: RabbitMQ owns those, and a republished `x-death` can make
the broker drop a message it believes is cycling through the delay levels.

See `docs/architecture.md`, "Failures, retries and dead letters".
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from contracts.topology import is_delay

RETRY_ATTEMPT = "retry-attempt"
STACK_TRACE_LIMIT = 8_000
MESSAGE_LIMIT = 1_000


class FailureReason(StrEnum):
    POISON = "poison"
    EXHAUSTED = "exhausted"
    CRASH_LOOP = "crash-loop"


def retry_attempt(headers: Mapping[str, Any] | None) -> int:
    """How many delayed retries this message has had already."""
    try:
        return max(0, int((headers or {}).get(RETRY_ATTEMPT, 0)))
    except (TypeError, ValueError):
        return 0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def failure_headers(
    incoming: AbstractIncomingMessage, queue: str, error: BaseException
) -> dict[str, Any]:
    """The incoming headers without the broker's `x-*`, plus where and how this failure happened."""
    old = {
        key: _text(value) if isinstance(value, bytes) else value
        for key, value in (incoming.headers or {}).items()
        if not key.startswith("x-")
    }
    exchange, routing_key = incoming.exchange or "", incoming.routing_key or ""
    if is_delay(exchange):  # it came through the delay levels (a timer): its queue is the way back
        exchange, routing_key = "", queue
    return old | {
        "original-exchange": _text(old.get("original-exchange", exchange)),
        "original-routing-key": _text(old.get("original-routing-key", routing_key)),
        "original-queue": queue,
        "first-failure-at": _text(old.get("first-failure-at", _now())),
        "last-failure-at": _now(),
        "exception-type": type(error).__name__,
        "exception-message": str(error)[:MESSAGE_LIMIT],
    }


def dead_letter_headers(
    incoming: AbstractIncomingMessage,
    queue: str,
    error: BaseException,
    reason: FailureReason,
    worker: str,
) -> dict[str, Any]:
    """Everything an operator needs to understand and replay a dead letter."""
    return failure_headers(incoming, queue, error) | {
        "failure-reason": reason.value,
        "attempts": retry_attempt(incoming.headers) + 1,
        "stack-trace": stack_trace(error),
        "worker": worker,
    }


def stack_trace(error: BaseException) -> str:
    """The traceback within the limit: innermost frames kept, the message truncated."""
    head = "Traceback (most recent call last):\n"
    tail = f"{type(error).__name__}: {str(error)[:MESSAGE_LIMIT]}\n"
    frames = "".join(traceback.format_tb(error.__traceback__))
    return head + frames[-(STACK_TRACE_LIMIT - len(head) - len(tail)) :] + tail
