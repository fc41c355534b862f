"""The inventory's own tables: stock levels, each order's reservation and its lines."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Column
from sqlmodel import Field, SQLModel

from outbox.tables import UtcDateTime, utcnow

__all__ = [
    "INVENTORY_TABLES",
    "OrderReservation",
    "ReservationStatus",
    "StockItem",
    "StockReservation",
]


class ReservationStatus(StrEnum):
    """Where an order stands with inventory; lines are only ever `reserved` or `released`."""

    RESERVED = "reserved"
    REJECTED = "rejected"
    RELEASED = "released"


def _ts(**kw: Any) -> Any:
    return Field(sa_column=Column(UtcDateTime(), **kw))


class StockItem(SQLModel, table=True):
    """One SKU: units on hand and how many of them active reservations hold."""

    __tablename__ = "stock_item"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="ck_stock_item_on_hand"),
        CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="ck_stock_item_reserved"),
        CheckConstraint("unit_price_cents >= 0", name="ck_stock_item_price"),
    )

    sku: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    unit_price_cents: int
    on_hand: int
    reserved: int = 0
    updated_at: datetime = _ts(nullable=False, default=utcnow)

    @property
    def available(self) -> int:
        """Units that a new reservation may take."""
        return self.on_hand - self.reserved


class OrderReservation(SQLModel, table=True):
    """Inventory's answer for one order; `released` with no lines is a release that came first."""

    __tablename__ = "order_reservation"
    __table_args__ = (
        CheckConstraint(
            "status IN ('reserved', 'rejected', 'released')", name="ck_order_reservation_status"
        ),
    )

    order_id: str = Field(primary_key=True, max_length=36)
    status: str = Field(max_length=16)
    sku: str | None = Field(default=None, max_length=32)
    reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    updated_at: datetime = _ts(nullable=False, default=utcnow)


class StockReservation(SQLModel, table=True):
    """Units of one SKU held for one order, at the price they were reserved at."""

    __tablename__ = "stock_reservation"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="ck_stock_reservation_quantity"),
        CheckConstraint("status IN ('reserved', 'released')", name="ck_stock_reservation_status"),
    )

    order_id: str = Field(primary_key=True, max_length=36, foreign_key="order_reservation.order_id")
    sku: str = Field(primary_key=True, max_length=32, foreign_key="stock_item.sku")
    quantity: int
    unit_price_cents: int
    status: str = Field(default=ReservationStatus.RESERVED, max_length=16)
    reserved_at: datetime = _ts(nullable=False, default=utcnow)
    released_at: datetime | None = _ts(nullable=True)


INVENTORY_TABLES = (StockItem, OrderReservation, StockReservation)
