"""Message metadata and its mapping onto AMQP properties (docs/architecture.md, "Contracts")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import uuid4

from contracts.base import Message

M = TypeVar("M", bound=Message)

CONTENT_TYPE = "application/json"
CAUSATION_HEADER = "causation-id"
TRACEPARENT_HEADER = "traceparent"


def new_message_id() -> str:
    """A fresh message id; it is also the deduplication key."""
    return str(uuid4())


@dataclass(frozen=True, slots=True)
class Envelope(Generic[M]):
    """A message with its identity, correlation, causation and trace context."""

    message: M
    message_id: str = field(default_factory=new_message_id)
    correlation_id: str | None = None
    causation_id: str | None = None
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    traceparent: str | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)

    def caused(self, message: Message, **overrides: Any) -> Envelope[Any]:
        """A new envelope for a message this one caused: same correlation and trace."""
        fields: dict[str, Any] = {
            "correlation_id": self.correlation_id or self.message_id,
            "causation_id": self.message_id,
            "traceparent": self.traceparent,
        }
        fields.update(overrides)
        return Envelope(message, **fields)


@dataclass(frozen=True, slots=True)
class WireMessage:
    """An encoded message: the body and the AMQP properties that travel with it."""

    body: bytes
    type: str
    message_id: str
    correlation_id: str | None
    timestamp: datetime
    headers: dict[str, Any]
    content_type: str = CONTENT_TYPE
    persistent: bool = True
