"""Read-only views of the payments database, for checkers and operators."""

from __future__ import annotations

from typing import NamedTuple
from uuid import UUID

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from workers.payments.model import charged_cents
from workers.payments.tables import Payment


class PaymentSummary(NamedTuple):
    """One order's payment as a conservation checker needs it."""

    status: str
    amount_cents: int
    charged_cents: int
    payment_id: str | None = None


async def payments_by_order(session: AsyncSession) -> dict[UUID, PaymentSummary]:
    """Every order's payment status, requested amount and what is still charged."""
    rows = (await session.exec(select(Payment))).all()
    return {
        row.order_id: PaymentSummary(
            row.status,
            row.amount_cents,
            charged_cents(row.status, row.amount_cents),
            row.payment_id,
        )
        for row in rows
    }


async def total_charged_cents(session: AsyncSession) -> int:
    """The money currently held from customers: captured and not refunded."""
    return sum(summary.charged_cents for summary in (await payments_by_order(session)).values())
