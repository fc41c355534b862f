"""Fakes that subclass the real ports, for unit tests of handlers through the real bootstrap."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aio_pika

from contracts.envelope import Envelope
from outbox.amqp import ConfirmedPublisher
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


class RecordingPublisher(ConfirmedPublisher):
    """A publisher whose broker always confirms, recording where each message went."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, aio_pika.Message]] = []

    async def publish(
        self, message: aio_pika.Message, exchange: str, routing_key: str, *, timeout: float = 10.0
    ) -> Any:
        self.sent.append((exchange, routing_key, message))
