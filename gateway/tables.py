"""The gateway's own tables: the status projection, its history, idempotency keys, and the
users' view it authenticates with (key hashes only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from outbox.tables import UtcDateTime, core_table, utcnow


def _ts(**kw: Any) -> Any:
    return Field(sa_column=Column(UtcDateTime(), **kw))


class OrderView(SQLModel, table=True):
    """What a client sees of an order; moved forward only by a higher `sequence`."""

    __tablename__ = "order_view"

    order_id: str = Field(primary_key=True, max_length=64)
    client: str = Field(index=True, max_length=64)
    customer_id: str = Field(max_length=64)
    status: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=300)
    sequence: int = 0
    items: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    total_cents: int | None = None
    currency: str = Field(max_length=3)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    updated_at: datetime = _ts(nullable=False, default=utcnow)


class OrderViewHistory(SQLModel, table=True):
    """Each status an order was seen in, with when."""

    __tablename__ = "order_view_history"

    order_id: str = Field(primary_key=True, max_length=64)
    sequence: int = Field(primary_key=True)
    status: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=300)
    at: datetime = _ts(nullable=False, default=utcnow)


class IdempotencyRecord(SQLModel, table=True):
    """An Idempotency-Key of one client, the request it came with, and the order it made."""

    __tablename__ = "idempotency_key"

    client: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    order_id: str = Field(max_length=64)
    created_at: datetime = _ts(nullable=False, default=utcnow, index=True)


class UserView(SQLModel, table=True):
    """A user as the gateway shows it; DEACTIVATED and REJECTED are final."""

    __tablename__ = "user_view"

    user_id: str = Field(primary_key=True, max_length=64)
    email: str = Field(max_length=254)
    name: str = Field(max_length=200)
    status: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    updated_at: datetime = _ts(nullable=False, default=utcnow)


class ApiKeyView(SQLModel, table=True):
    """A user's API key by its SHA-256 hash (the key itself is never stored)."""

    __tablename__ = "api_key_view"

    key_hash: str = Field(primary_key=True, max_length=64)
    key_id: str = Field(unique=True, max_length=64)
    user_id: str = Field(index=True, max_length=64)
    revoked: bool = False
    created_at: datetime = _ts(nullable=False, default=utcnow)


TABLES = (OrderView, OrderViewHistory, IdempotencyRecord, UserView, ApiKeyView)

# The Core tables: the hot paths (POST, GET, the projection) use plain statements, compiled once,
# without the ORM's identity map and flush.
VIEWS, HISTORY = core_table(OrderView), core_table(OrderViewHistory)
KEYS = core_table(IdempotencyRecord)
USERS, API_KEYS = core_table(UserView), core_table(ApiKeyView)
