"""Read-only views of inventory state, for the conservation checker and operators."""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from workers.inventory.tables import StockItem, StockReservation

__all__ = ["reservations", "stock_levels"]


async def stock_levels(session: AsyncSession) -> dict[str, tuple[int, int]]:
    """`{sku: (on_hand, reserved)}` for every SKU."""
    rows = await session.exec(select(StockItem).order_by(col(StockItem.sku)))
    return {item.sku: (item.on_hand, item.reserved) for item in rows}


async def reservations(session: AsyncSession) -> dict[str, list[tuple[str, int, str]]]:
    """`{order_id: [(sku, quantity, status), ...]}` for every order that reserved stock."""
    query = select(StockReservation).order_by(
        col(StockReservation.order_id), col(StockReservation.sku)
    )
    held: defaultdict[str, list[tuple[str, int, str]]] = defaultdict(list)
    for line in await session.exec(query):
        held[line.order_id].append((line.sku, line.quantity, line.status))
    return dict(held)
