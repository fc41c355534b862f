"""The outbox, the inbox and the relay lease (docs/architecture.md, "Outbox and inbox")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
    Index,
    LargeBinary,
    Table,
    TypeDecorator,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Now, timezone-aware."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def _ts(**kw: Any) -> Any:
    return Field(sa_column=Column(UtcDateTime(), **kw))


class OutboxMessage(SQLModel, table=True):
    """A message written in the caller's transaction, published later by the relay."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_pending", "published_at", "created_at"),)

    id: str = Field(primary_key=True, max_length=64)
    exchange: str = Field(max_length=255)
    routing_key: str = Field(max_length=255)
    deliver_at: datetime | None = _ts(nullable=True)
    type: str = Field(max_length=255)
    correlation_id: str | None = Field(default=None, max_length=255)
    headers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _ts(nullable=False, default=utcnow)
    available_at: datetime = _ts(nullable=False, default=utcnow)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    published_at: datetime | None = _ts(nullable=True)


class InboxMessage(SQLModel, table=True):
    """A message a consumer has handled; its presence makes a redelivery a no-op."""

    __tablename__ = "inbox_message"

    consumer: str = Field(primary_key=True, max_length=255)
    message_id: str = Field(primary_key=True, max_length=255)
    processed_at: datetime = _ts(nullable=False, default=utcnow, index=True)


class RelayLease(SQLModel, table=True):
    """Who may relay a SQLite database's outbox, and until when."""

    __tablename__ = "relay_lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=255)
    expires_at: datetime = _ts(nullable=False)


class CrashJournal(SQLModel, table=True):
    """A redelivered message being handled alone; a redelivery that finds it killed its worker."""

    __tablename__ = "crash_journal"

    consumer: str = Field(primary_key=True, max_length=255)
    message_id: str = Field(primary_key=True, max_length=255)
    crashes: int = Field(default=0)  # times a worker died while handling it alone
    started_at: datetime = _ts(nullable=False, default=utcnow)


MESSAGING_TABLES = (OutboxMessage, InboxMessage, RelayLease, CrashJournal)


def core_table(model: type[SQLModel]) -> Table:
    """A table model's Core `Table`, for hot paths: statements built once, rows not instances."""
    return model.__table__  # type: ignore[attr-defined]


OUTBOX, INBOX = core_table(OutboxMessage), core_table(InboxMessage)
