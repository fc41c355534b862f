"""Fakes that subclass the real ports, for unit tests of handlers through the real bootstrap."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from contracts.envelope import Envelope
from outbox.unit_of_work import UnitOfWork


class RecordingUnitOfWork(UnitOfWork):
    """A real unit of work on a real session that records messages instead of writing the outbox."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.published: list[Envelope[Any]] = []
        self.scheduled: list[tuple[Envelope[Any], str, timedelta]] = []

    def publish(self, envelope: Envelope[Any]) -> None:
        self.published.append(envelope)

    def send_later(self, envelope: Envelope[Any], queue: str, delay: timedelta) -> None:
        self.scheduled.append((envelope, queue, delay))
