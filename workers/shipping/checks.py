"""Shipping's part of `warren verify`: each order's shipment (`shipments`)."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from workers.runtime.checks import Verification
from workers.shipping.queries import shipments_by_order


async def collect(session: AsyncSession) -> dict[str, Any]:
    """`shipments`: each order's shipment summary, by order id."""
    return {"shipments": {str(k): v for k, v in (await shipments_by_order(session)).items()}}


verify = Verification(collect)
