"""Payments' part of `warren verify`: what each order was charged (`charges`)."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from workers.payments.queries import payments_by_order
from workers.runtime.checks import Verification


async def collect(session: AsyncSession) -> dict[str, Any]:
    """`charges`: each order's payment summary, by order id."""
    return {"charges": {str(k): v for k, v in (await payments_by_order(session)).items()}}


verify = Verification(collect)
