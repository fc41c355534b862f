"""What a payment is and what a card provider can answer: pure values, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import uuid4

ALREADY_CANCELLED = "order already cancelled"


class PaymentStatus(StrEnum):
    """The life of one order's payment; `voided` is the tombstone of a refund before capture."""

    CAPTURED = "captured"
    DECLINED = "declined"
    REFUNDED = "refunded"
    VOIDED = "voided"


@dataclass(frozen=True, slots=True)
class Approved:
    """The provider charged the card."""

    payment_id: str


@dataclass(frozen=True, slots=True)
class Declined:
    """The provider refused the charge: a business outcome, not an error."""

    reason: str


ChargeOutcome = Approved | Declined


def new_payment_id() -> str:
    """A fresh provider-side payment id, e.g. `pay_3f2a…`."""
    return f"pay_{uuid4().hex}"


def charged_cents(status: str, amount_cents: int) -> int:
    """What the customer is out of pocket for a payment in `status`."""
    return amount_cents if status == PaymentStatus.CAPTURED else 0
