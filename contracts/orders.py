"""Contracts owned by the orders service: the saga's commands and its status events."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from contracts.base import (
    Address,
    Cents,
    Command,
    Currency,
    Event,
    Lines,
    OrderId,
    Part,
    ShortText,
)

CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Token = Annotated[str, StringConstraints(pattern=r"^tok_[a-z0-9_]{1,60}$")]


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    STOCK_RESERVED = "STOCK_RESERVED"
    PAID = "PAID"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({OrderStatus.CONFIRMED, OrderStatus.REJECTED, OrderStatus.CANCELLED})


class SagaStep(StrEnum):
    RESERVE_STOCK = "reserve_stock"
    CAPTURE_PAYMENT = "capture_payment"
    ARRANGE_SHIPMENT = "arrange_shipment"


class PlaceOrderV1(Command):
    """Place an order (first version: a flat card token, no currency)."""

    NAME = "orders.PlaceOrder"
    VERSION = 1

    order_id: OrderId
    customer_id: CustomerId
    items: Lines
    payment_token: Token
    shipping_address: Address


class PaymentMethod(Part):
    token: Token


class PlaceOrder(Command):
    """Place an order (v2: the payment method is an object, and the currency is explicit)."""

    NAME = "orders.PlaceOrder"
    VERSION = 2

    order_id: OrderId
    customer_id: CustomerId
    items: Lines
    payment: PaymentMethod
    shipping_address: Address
    currency: Currency = "EUR"


def upcast_place_order_v1(old: PlaceOrderV1) -> PlaceOrder:
    """v1 -> v2: v1 orders were always charged in euros."""
    return PlaceOrder(
        order_id=old.order_id,
        customer_id=old.customer_id,
        items=old.items,
        payment=PaymentMethod(token=old.payment_token),
        shipping_address=old.shipping_address,
        currency="EUR",
    )


# How an old version becomes the next one; the registry finds this table in every contract module.
UPCASTERS = {PlaceOrderV1: upcast_place_order_v1}


class CancelOrder(Command):
    """Ask to cancel an order; accepted until its shipment is arranged."""

    NAME = "orders.CancelOrder"
    VERSION = 1

    order_id: OrderId
    reason: ShortText = "cancelled by customer"


class StepTimedOut(Event):
    """A saga step's deadline passed; sent to the orders service through the delay levels."""

    NAME = "orders.StepTimedOut"
    VERSION = 1

    order_id: OrderId
    step: SagaStep
    sequence: Annotated[int, Field(ge=0)]


class OrderStatusChanged(Event):
    """The order moved to a new status; `sequence` orders the changes of one order."""

    NAME = "orders.OrderStatusChanged"
    VERSION = 1

    order_id: OrderId
    status: OrderStatus
    sequence: Annotated[int, Field(ge=1)]
    reason: ShortText | None = None
    total_cents: Cents | None = None
    currency: Currency | None = None
