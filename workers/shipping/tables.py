"""The shipping database: one row per order, which is also the cancel-before-arrange tombstone."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import CheckConstraint, Column
from sqlmodel import Field, SQLModel

from outbox.tables import UtcDateTime, utcnow
from workers.shipping.model import ShipmentStatus

_STATUSES = ", ".join(f"'{status.value}'" for status in ShipmentStatus)


def _timestamp(*, nullable: bool, **kw: Any) -> Any:
    return Field(sa_column=Column(UtcDateTime(), nullable=nullable, **kw))


class Shipment(SQLModel, table=True):
    """The shipment of one order; its primary key makes an arrangement happen at most once."""

    __tablename__ = "shipment"
    __table_args__ = (CheckConstraint(f"status IN ({_STATUSES})", name="ck_shipment_status"),)

    order_id: UUID = Field(primary_key=True)
    status: str = Field(max_length=16)
    carrier: str | None = Field(default=None, max_length=40)
    tracking_number: str | None = Field(default=None, max_length=64)
    country: str | None = Field(default=None, max_length=2)
    created_at: datetime = _timestamp(nullable=False, default=utcnow)
    arranged_at: datetime | None = _timestamp(nullable=True)
    cancelled_at: datetime | None = _timestamp(nullable=True)


SHIPPING_TABLES = (Shipment,)
