"""HTTP shapes of the gateway, apart from the wire contracts they are translated into."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.base import Currency, Sku
from contracts.orders import CustomerId, OrderStatus, Token


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LineIn(_In):
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=1000)]


class PaymentIn(_In):
    token: Token


class AddressIn(_In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    line1: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    city: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class PlaceOrderRequest(_In):
    """The body of `POST /orders`."""

    customer_id: CustomerId
    items: Annotated[list[LineIn], Field(min_length=1, max_length=50)]
    payment: PaymentIn
    shipping_address: AddressIn
    currency: Currency | None = None


class LineOut(BaseModel):
    sku: str
    quantity: int


class TotalOut(BaseModel):
    amount_cents: int | None = Field(description="Known once the stock is reserved.")
    currency: str


class HistoryOut(BaseModel):
    status: OrderStatus
    reason: str | None
    sequence: int
    at: datetime


class OrderOut(BaseModel):
    """An order as its client sees it."""

    order_id: str
    status: OrderStatus
    reason: str | None
    items: list[LineOut]
    total: TotalOut
    created_at: datetime
    updated_at: datetime
    history: list[HistoryOut]


class Problem(BaseModel):
    """An RFC 9457 problem detail (`application/problem+json`)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
