"""The orders service's own tables: one row per order, its status history, early cancels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from contracts.orders import OrderStatus
from outbox.tables import UtcDateTime, utcnow


def _ts(**kw: Any) -> Any:
    return Field(sa_column=Column(UtcDateTime(), **kw))


class CustomerOrder(SQLModel, table=True):
    """The saga state of one order; `sequence` counts its status changes."""

    __tablename__ = "customer_order"

    order_id: str = Field(primary_key=True, max_length=64)
    customer_id: str = Field(max_length=64, index=True)
    status: OrderStatus = Field(max_length=20, index=True)
    reason: str | None = Field(default=None, max_length=300)
    sequence: int = 1
    items: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    lines: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    total_cents: int | None = None
    currency: str = Field(max_length=3)
    payment_token: str = Field(max_length=64)
    shipping_address: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    payment_id: str | None = Field(default=None, max_length=64)
    carrier: str | None = Field(default=None, max_length=40)
    tracking_number: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    updated_at: datetime = _ts(nullable=False, default=utcnow, index=True)


class OrderHistory(SQLModel, table=True):
    """One row per status an order went through."""

    __tablename__ = "order_history"

    order_id: str = Field(primary_key=True, max_length=64)
    sequence: int = Field(primary_key=True)
    status: OrderStatus = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=300)
    at: datetime = _ts(nullable=False, default=utcnow)


class CancelTombstone(SQLModel, table=True):
    """A cancel that arrived before its order; the order is created cancelled when it comes."""

    __tablename__ = "cancel_tombstone"

    order_id: str = Field(primary_key=True, max_length=64)
    reason: str = Field(max_length=300)
    cancelled_at: datetime = _ts(nullable=False, default=utcnow)


TABLES = (CustomerOrder, OrderHistory, CancelTombstone)
