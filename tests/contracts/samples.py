"""A valid instance of every contract version, for any test that needs one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from contracts import inventory, orders, payments, shipping
from contracts.base import Address, Message, OrderLine, PricedLine

__all__ = ["ADDRESS", "LINES", "ORDER_ID", "TOKEN", "TRACEPARENT", "sample"]

M = TypeVar("M", bound=Message)

ORDER_ID = UUID("6f1c3a52-3d0e-4d57-9a57-0f3f0c1b2a10")
TOKEN = "tok_visa_4242"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ADDRESS = Address(
    name="Ada Lovelace",
    line1="12 St James's Square",
    city="London",
    postal_code="SW1Y 4JH",
    country="GB",
)
LINES = [OrderLine(sku="BOOK-42", quantity=2), OrderLine(sku="MUG-7", quantity=1)]
PRICED = [
    PricedLine(sku="BOOK-42", quantity=2, unit_price_cents=1999),
    PricedLine(sku="MUG-7", quantity=1, unit_price_cents=850),
]
BY_ID = {"order_id": ORDER_ID}

_FIELDS: dict[type[Message], Callable[[], dict[str, Any]]] = {
    orders.PlaceOrderV1: lambda: {
        "customer_id": "cust-1",
        "items": LINES,
        "payment_token": TOKEN,
        "shipping_address": ADDRESS,
    },
    orders.PlaceOrder: lambda: {
        "customer_id": "cust-1",
        "items": LINES,
        "payment": orders.PaymentMethod(token=TOKEN),
        "shipping_address": ADDRESS,
        "currency": "EUR",
    },
    orders.CancelOrder: lambda: {"reason": "changed my mind"},
    orders.StepTimedOut: lambda: {"step": orders.SagaStep.CAPTURE_PAYMENT, "sequence": 3},
    orders.OrderStatusChanged: lambda: {
        "status": orders.OrderStatus.CONFIRMED,
        "sequence": 4,
        "total_cents": 4848,
        "currency": "EUR",
    },
    inventory.ReserveStock: lambda: {"items": LINES},
    inventory.StockReserved: lambda: {"lines": PRICED},
    inventory.StockRejected: lambda: {"sku": "MUG-7", "reason": "out of stock"},
    inventory.ReleaseStock: dict,
    payments.CapturePayment: lambda: {"amount_cents": 4848, "currency": "EUR", "token": TOKEN},
    payments.PaymentCaptured: lambda: {
        "payment_id": "pay-1",
        "amount_cents": 4848,
        "currency": "EUR",
    },
    payments.PaymentDeclined: lambda: {"reason": "card declined"},
    payments.RefundPayment: lambda: {"reason": "order cancelled"},
    payments.PaymentRefunded: lambda: {"payment_id": "pay-1", "amount_cents": 4848},
    shipping.ArrangeShipment: lambda: {"items": LINES, "shipping_address": ADDRESS},
    shipping.ShipmentArranged: lambda: {"carrier": "DHL", "tracking_number": "JD0146000033"},
    shipping.CancelShipment: dict,
}


def sample(model: type[M]) -> M:
    """A valid instance of `model`: its entry in `_FIELDS`, or the first example it declares."""
    if model in _FIELDS:
        return model(**BY_ID, **_FIELDS[model]())
    examples = (model.model_config.get("json_schema_extra") or {}).get("examples")  # type: ignore[union-attr]
    if not examples:
        raise LookupError(
            f"no sample for {model.type_name()}: give it `json_schema_extra={{'examples': [...]}}`"
        )
    return model.model_validate(examples[0])
