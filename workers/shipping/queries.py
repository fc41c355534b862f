"""Read-only views of the shipping database, for checkers and operators."""

from __future__ import annotations

from typing import NamedTuple
from uuid import UUID

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from workers.shipping.tables import Shipment


class ShipmentSummary(NamedTuple):
    """One order's shipment as a conservation checker needs it; a tombstone has no carrier."""

    status: str
    carrier: str | None
    tracking_number: str | None


async def shipments_by_order(session: AsyncSession) -> dict[UUID, ShipmentSummary]:
    """Every order's shipment status, carrier and tracking number."""
    rows = (await session.exec(select(Shipment))).all()
    return {
        row.order_id: ShipmentSummary(row.status, row.carrier, row.tracking_number) for row in rows
    }
