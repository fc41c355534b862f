"""HTTP shapes of the gateway, apart from the wire contracts they are translated into."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.accounts import Email, UserStatus
from contracts.base import Currency, Sku
from contracts.orders import OrderStatus, Token

# Printable text with at least one visible character: what the contracts accept once stripped,
# and nothing a database refuses (NUL) or a log line mangles (control characters).
_PRINTABLE = r"^[^\x00-\x1F\x7F]*[^\s\x00-\x1F\x7F][^\x00-\x1F\x7F]*$"


Text20 = Annotated[str, StringConstraints(min_length=1, max_length=20, pattern=_PRINTABLE)]
Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_PRINTABLE)]
Text100 = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=_PRINTABLE)]
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_PRINTABLE)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineIn(_In):
    sku: Sku
    quantity: Annotated[int, Field(ge=1, le=1000)]


class PaymentIn(_In):
    token: Token


class AddressIn(_In):
    name: Text200
    line1: Text200
    city: Text100
    postal_code: Text20
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class PlaceOrderRequest(_In):
    """The body of `POST /orders`."""

    customer_id: Text64
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


def order_out(view: Any, history: Any) -> OrderOut:
    """The API's view of an order from its row (or anything with the same attributes)."""
    return OrderOut(
        order_id=view.order_id,
        status=OrderStatus(view.status),
        reason=view.reason,
        items=[LineOut(**line) for line in view.items],
        total=TotalOut(amount_cents=view.total_cents, currency=view.currency),
        created_at=view.created_at,
        updated_at=view.updated_at,
        history=[
            HistoryOut(status=OrderStatus(h.status), reason=h.reason, sequence=h.sequence, at=h.at)
            for h in history
        ],
    )


class CreateUserRequest(_In):
    """The body of `POST /users`."""

    email: Email
    name: Text200


class UserOut(BaseModel):
    """A user as the gateway shows it."""

    user_id: str
    email: str
    name: str
    status: UserStatus
    reason: str | None = None


class ApiKeyOut(BaseModel):
    """A new API key: shown this once, never stored in plain text."""

    key_id: str
    api_key: str


class KeyRevokedOut(BaseModel):
    key_id: str
    revoked: bool


class CartItemRequest(_In):
    """The body of `PUT /carts/{id}/items/{sku}`: how many (0 removes the line)."""

    quantity: Annotated[int, Field(ge=0, le=1000)]


class CheckoutRequest(_In):
    """The body of `POST /carts/{id}/checkout`."""

    payment: PaymentIn
    shipping_address: AddressIn


class CartLineOut(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price_cents: int
    line_total_cents: int


class CartOut(BaseModel):
    """A cart, priced from the catalog."""

    cart_id: str
    status: str = Field(description="OPEN, CHECKED_OUT or ABANDONED")
    items: list[CartLineOut]
    total_cents: int
    order_id: str | None = None


class Problem(BaseModel):
    """An RFC 9457 problem detail (`application/problem+json`)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
