"""What the consumer decides, as plain functions: no broker, no database, testable in memory.

The consumer (`workers/runtime/consumer.py`) and the failure router (`routing.py`) only carry
these decisions out: which transactions a failed batch is tried again in, and where a failed
message goes (poison -> DLQ at once; transient -> delayed retry; budget spent -> DLQ).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from config.settings import Settings
from contracts.errors import PoisonMessage
from outbox.backoff import retry_delay
from workers.runtime.errors import PermanentError
from workers.runtime.failures import FailureReason

T = TypeVar("T")

ALWAYS_PERMANENT: tuple[type[BaseException], ...] = (PermanentError, PoisonMessage)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Publish a copy to `Q.dlq` (confirmed), then ack the original."""

    reason: FailureReason


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Publish a copy through the delay levels as delayed retry `attempt`, then ack the original."""

    attempt: int
    delay_s: float


Route = DeadLetter | RetryLater


def is_permanent(error: BaseException, permanent: tuple[type[BaseException], ...]) -> bool:
    """Whether retrying cannot help: poison, `PermanentError` or a service's permanent errors."""
    return isinstance(error, (*ALWAYS_PERMANENT, *permanent))


def route_failure(
    error: BaseException,
    attempts_so_far: int,
    settings: Settings,
    permanent: tuple[type[BaseException], ...] = (),
    rng: random.Random | None = None,
) -> Route:
    """Where a message goes once its immediate retries failed; `attempts_so_far` delayed ones."""
    if is_permanent(error, permanent):
        return DeadLetter(FailureReason.POISON)
    if attempts_so_far < settings.delayed_retries:
        attempt = attempts_so_far + 1
        delay_s = retry_delay(
            attempt,
            base_s=settings.retry_base_s,
            cap_s=settings.retry_max_s,
            jitter=settings.retry_jitter,
            rng=rng,
        )
        return RetryLater(attempt, delay_s)
    return DeadLetter(FailureReason.EXHAUSTED)


def split_batch(items: Sequence[T], failed_index: int | None) -> list[Sequence[T]]:
    """The transactions a failed batch is tried again in, in order.

    A failure blamed on one message isolates it: the messages before it together, it alone, the
    ones after it together. A failure no message can be blamed for (the inbox claim, the commit)
    sends each message through on its own.
    """
    if failed_index is None:
        return [items[i : i + 1] for i in range(len(items))]
    if not 0 <= failed_index < len(items):
        raise IndexError(f"message {failed_index} is not in a batch of {len(items)}")
    after = failed_index + 1
    parts = (items[:failed_index], items[failed_index:after], items[after:])
    return [part for part in parts if part]
