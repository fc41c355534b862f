"""Fakes that subclass the real ports, for unit tests of handlers through the real bootstrap."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from contracts.envelope import Envelope
from contracts.registry import Registry
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


@dataclass
class FakeChannel:
    """The part of a channel the runtime looks at before it requeues."""

    is_closed: bool = False


@dataclass
class FakeDelivery:
    """An in-memory delivery with the attributes the runtime reads; it records how it is settled."""

    body: bytes
    type: str | None
    message_id: str | None
    headers: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = "flow-1"
    timestamp: datetime | None = None
    exchange: str | None = "orders.commands"
    routing_key: str | None = "orders.PlaceOrder"
    app_id: str | None = "tests"
    content_type: str | None = "application/json"
    content_encoding: str | None = None
    priority: int | None = None
    reply_to: str | None = None
    redelivered: bool = False
    channel: FakeChannel = field(default_factory=FakeChannel)
    settled: list[str] = field(default_factory=list)  # "ack", "requeue" or "reject", in order

    @classmethod
    def of(cls, envelope: Envelope[Any], registry: Registry, **attributes: Any) -> FakeDelivery:
        """The delivery of an encoded contract message."""
        wire = registry.encode(envelope)
        return cls(
            body=wire.body,
            type=wire.type,
            message_id=wire.message_id,
            headers=dict(wire.headers),
            correlation_id=wire.correlation_id,
            timestamp=wire.timestamp,
            **attributes,
        )

    def incoming(self) -> AbstractIncomingMessage:
        """This fake as the runtime's parameter type."""
        return cast(AbstractIncomingMessage, self)

    async def ack(self, multiple: bool = False) -> None:
        self.settled.append("ack")

    async def reject(self, requeue: bool = False) -> None:
        self.settled.append("requeue" if requeue else "reject")


class RefusingPublisher(ConfirmedPublisher):
    """A publisher whose broker refuses every message (a nack or no route)."""

    def __init__(self) -> None:
        self.attempts = 0

    async def publish(
        self, message: aio_pika.Message, exchange: str, routing_key: str, *, timeout: float = 10.0
    ) -> Any:
        self.attempts += 1
        raise RuntimeError("the broker refused the message")
