"""The payments database: one row per order, which is also the refund-before-capture tombstone."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import CheckConstraint, Column
from sqlmodel import Field, SQLModel

from outbox.tables import UtcDateTime, utcnow
from workers.payments.model import PaymentStatus

_STATUSES = ", ".join(f"'{status.value}'" for status in PaymentStatus)


def _timestamp(*, nullable: bool, **kw: Any) -> Any:
    return Field(sa_column=Column(UtcDateTime(), nullable=nullable, **kw))


class Payment(SQLModel, table=True):
    """The payment of one order; its primary key is what makes a capture happen at most once."""

    __tablename__ = "payment"
    __table_args__ = (CheckConstraint(f"status IN ({_STATUSES})", name="ck_payment_status"),)

    order_id: UUID = Field(primary_key=True)
    status: str = Field(max_length=16)
    payment_id: str | None = Field(default=None, max_length=64, unique=True)
    token: str | None = Field(default=None, max_length=64)
    amount_cents: int = 0
    currency: str | None = Field(default=None, max_length=3)
    decline_reason: str | None = Field(default=None, max_length=200)
    refund_reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = _timestamp(nullable=False, default=utcnow)
    captured_at: datetime | None = _timestamp(nullable=True)
    refunded_at: datetime | None = _timestamp(nullable=True)


PAYMENT_TABLES = (Payment,)
