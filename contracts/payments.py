"""Contracts owned by the payments service."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from contracts.base import Cents, Command, Currency, Event, OrderId, ShortText
from contracts.orders import Token

PaymentId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class CapturePayment(Command):
    """Charge the order's total to the card token, at most once per order."""

    NAME = "payments.CapturePayment"
    VERSION = 1

    order_id: OrderId
    amount_cents: Cents
    currency: Currency
    token: Token


class PaymentCaptured(Event):
    NAME = "payments.PaymentCaptured"
    VERSION = 1

    order_id: OrderId
    payment_id: PaymentId
    amount_cents: Cents
    currency: Currency


class PaymentDeclined(Event):
    NAME = "payments.PaymentDeclined"
    VERSION = 1

    order_id: OrderId
    reason: ShortText


class RefundPayment(Command):
    """Refund whatever was captured for an order (compensation); a no-op if nothing was."""

    NAME = "payments.RefundPayment"
    VERSION = 1

    order_id: OrderId
    reason: ShortText


class PaymentRefunded(Event):
    NAME = "payments.PaymentRefunded"
    VERSION = 1

    order_id: OrderId
    payment_id: PaymentId
    amount_cents: Cents
