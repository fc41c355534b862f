"""The carts database: carts and their lines; a checked-out cart keeps the order it made."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from outbox.tables import UtcDateTime


def _ts() -> Any:
    return Field(sa_column=Column(UtcDateTime(), nullable=False))


class Cart(SQLModel, table=True):
    """A user's cart: OPEN, then CHECKED_OUT (with its order) or ABANDONED."""

    __tablename__ = "cart"

    cart_id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(index=True, max_length=64)
    status: str = Field(max_length=20)
    checkout_key: str | None = Field(default=None, max_length=255)
    order_id: str | None = Field(default=None, max_length=64)
    ordered: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class CartLine(SQLModel, table=True):
    """One SKU in a cart and how many."""

    __tablename__ = "cart_line"

    cart_id: str = Field(primary_key=True, max_length=64)
    sku: str = Field(primary_key=True, max_length=32)
    quantity: int


TABLES = (Cart, CartLine)
