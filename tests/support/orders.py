"""The body of a `POST /orders` request, as a client would send it."""

from __future__ import annotations

from typing import Any


def order_body(
    token: str = "tok_visa", sku: str = "MUG-7", quantity: int = 1, customer: str = "cust-http"
) -> dict[str, Any]:
    """A valid order request; the card, SKU and quantity script its outcome."""
    return {
        "customer_id": customer,
        "items": [{"sku": sku, "quantity": quantity}],
        "payment": {"token": token},
        "shipping_address": {
            "name": "Ada",
            "line1": "1 Loop Rd",
            "city": "Bristol",
            "postal_code": "BS1",
            "country": "GB",
        },
    }
