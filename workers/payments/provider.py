"""The card provider port and a simulated, deterministic provider behind it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from uuid import UUID

from workers.payments.model import (
    ALREADY_CANCELLED,
    Approved,
    ChargeOutcome,
    Declined,
    new_payment_id,
)
from workers.runtime.errors import TransientError

VISA = "tok_visa"
DECLINED = "tok_declined"
FLAKY = "tok_flaky"


def capture_key(order_id: UUID) -> str:
    """The idempotency key of an order's capture: one order is charged at most once."""
    return f"{order_id}:capture"


class CardProvider(ABC):
    """A card processor; every call for an order uses the order's capture key."""

    @abstractmethod
    async def capture(
        self, order_id: UUID, token: str, amount_cents: int, currency: str
    ) -> ChargeOutcome:
        """Charge the card, or answer with the earlier charge of this order; may raise Transient."""

    @abstractmethod
    async def refund(self, order_id: UUID) -> str | None:
        """Give back what the order's capture charged (its payment id), or void the key if nothing.

        Refunding again changes nothing; a capture arriving after a void is declined.
        """


@dataclass(frozen=True, slots=True)
class Charge:
    """A charge as the provider recorded it."""

    payment_id: str
    order_id: UUID
    amount_cents: int
    currency: str


class SimulatedCardProvider(CardProvider):
    """Decides by token: visa succeeds, declined and unknown cards are declined, flaky fails first.

    Its records stand in for the provider's own systems, so they live in this object and survive
    a handler's rollback; being in process memory, they do not survive a restart (simulation only).
    """

    def __init__(self, *, flaky_failures: int = 2) -> None:
        self.flaky_failures = flaky_failures
        self.charges: dict[UUID, Charge] = {}
        self.refunds: dict[UUID, str | None] = {}
        self._attempts: Counter[UUID] = Counter()

    async def capture(
        self, order_id: UUID, token: str, amount_cents: int, currency: str
    ) -> ChargeOutcome:
        """Charge by the rules of the token; a repeated order gets its first charge back."""
        self._attempts[order_id] += 1
        if order_id in self.refunds:
            return Declined(ALREADY_CANCELLED)
        if order_id in self.charges:
            return Approved(self.charges[order_id].payment_id)
        if token == FLAKY and self._attempts[order_id] <= self.flaky_failures:
            raise TransientError(
                f"card provider timed out on attempt {self._attempts[order_id]} for {order_id}"
            )
        if token in (VISA, FLAKY):
            charge = Charge(new_payment_id(), order_id, amount_cents, currency)
            self.charges[order_id] = charge
            return Approved(charge.payment_id)
        return Declined("card declined" if token == DECLINED else "unknown card")

    async def refund(self, order_id: UUID) -> str | None:
        """Record the refund (or the void) once."""
        charge = self.charges.get(order_id)
        return self.refunds.setdefault(order_id, charge.payment_id if charge else None)
