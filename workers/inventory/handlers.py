"""Inventory handlers: reserve an order's stock all or nothing, release it on compensation.

Every answer is rebuilt from stored state, so a repeated command gets the same answer. Rows
are locked order first, then stock items in SKU order, so concurrent handlers on PostgreSQL
cannot deadlock; on SQLite the runtime's `BEGIN IMMEDIATE` already serialises writers. Rows are
read and written on the transaction's cursor (`KeyedRows`), not through the ORM's flush: each
write runs where it is made, the order's row before its lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import bindparam, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.base import Message, PricedLine
from contracts.envelope import Envelope
from contracts.inventory import ReleaseStock, ReserveStock, StockRejected, StockReserved
from outbox.statements import KeyedRows
from outbox.tables import utcnow
from outbox.unit_of_work import UnitOfWork
from workers.inventory.model import ORDER_CANCELLED, Shortfall, StockLevel, allocate
from workers.inventory.tables import (
    OrderReservation,
    ReservationStatus,
    StockItem,
    StockReservation,
)
from workers.runtime.consumer import Handler

__all__ = ["HANDLERS", "release_stock", "reserve_stock"]

ORDERS, ITEMS, LINES = (
    KeyedRows(OrderReservation),
    KeyedRows(StockItem),
    KeyedRows(StockReservation),
)


async def reserve_stock(envelope: Envelope[ReserveStock], uow: UnitOfWork) -> None:
    """Reserve every line of the order or none; answer StockReserved or StockRejected."""
    command = envelope.message
    order = await _locked_order(uow.session, command.order_id)
    held = None  # the lines reserved now; a repeated command reads them back
    if order is None:
        order, held = await _reserve(uow.session, command)
    uow.publish(envelope.caused(await _answer(uow.session, order, held)))


async def release_stock(envelope: Envelope[ReleaseStock], uow: UnitOfWork) -> None:
    """Give back what the order holds; a release that comes first blocks a later reservation."""
    order_id = envelope.message.order_id
    order = await _locked_order(uow.session, order_id)
    if order is None:
        released = OrderReservation(order_id=str(order_id), status=ReservationStatus.RELEASED)
        await ORDERS.add(uow.session, released)
    elif order.status == ReservationStatus.RESERVED:
        await _release(uow.session, order)


async def _reserve(
    session: AsyncSession, command: ReserveStock
) -> tuple[OrderReservation, list[PricedLine]]:
    """The order's reservation (or rejection) and the lines it holds, sorted by SKU."""
    items = await _locked_stock(session, (line.sku for line in command.items))
    levels = {sku: StockLevel(item.unit_price_cents, item.available) for sku, item in items.items()}
    outcome = allocate(command.items, levels)
    order_id = str(command.order_id)
    if isinstance(outcome, Shortfall):
        order = OrderReservation(
            order_id=order_id,
            status=ReservationStatus.REJECTED,
            sku=outcome.sku,
            reason=outcome.reason,
        )
        held = []
    else:
        order = OrderReservation(order_id=order_id, status=ReservationStatus.RESERVED)
        held = sorted(outcome, key=lambda line: line.sku)
    await ORDERS.add(session, order)  # before its lines, which refer to it
    for line in held:
        await _hold(session, items[line.sku], line.quantity)
        await LINES.add(session, StockReservation(order_id=order_id, **line.model_dump()))
    return order, held


async def _release(session: AsyncSession, order: OrderReservation) -> None:
    lines = await _lines(session, order.order_id)
    items = await _locked_stock(session, (line.sku for line in lines))
    for line in lines:
        await _hold(session, items[line.sku], -line.quantity)
        line.status, line.released_at = ReservationStatus.RELEASED, utcnow()
        await LINES.update(session, line, "status", "released_at")
    order.status, order.updated_at = ReservationStatus.RELEASED, utcnow()
    await ORDERS.update(session, order, "status", "updated_at")


async def _answer(
    session: AsyncSession, order: OrderReservation, held: list[PricedLine] | None = None
) -> Message:
    """The answer stored state gives; `held`, when given, are the lines it holds (by SKU)."""
    order_id = UUID(order.order_id)
    if order.status == ReservationStatus.RESERVED:
        if held is None:  # a repeated command: read back
            held = [
                PricedLine(sku=x.sku, quantity=x.quantity, unit_price_cents=x.unit_price_cents)
                for x in await _lines(session, order.order_id)
            ]
        return StockReserved(order_id=order_id, lines=held)
    if order.status == ReservationStatus.REJECTED:
        return StockRejected(order_id=order_id, sku=order.sku, reason=order.reason or "rejected")
    return StockRejected(order_id=order_id, reason=ORDER_CANCELLED)


async def _hold(session: AsyncSession, item: StockItem, quantity: int) -> None:
    """Add `quantity` (negative to give back) to what reservations hold of `item`."""
    item.reserved += quantity
    item.updated_at = utcnow()
    await ITEMS.update(session, item, "reserved", "updated_at")


async def _locked_order(session: AsyncSession, order_id: UUID) -> OrderReservation | None:
    return await ORDERS.get(session, str(order_id), lock=True)


# Built once, run with parameters: building a statement costs more than SQLite takes to run it.
_STOCK = (
    select(ITEMS.table)
    .where(ITEMS.table.c.sku.in_(bindparam("skus", expanding=True)))
    .order_by(ITEMS.table.c.sku)
    .with_for_update()
)
_LINES = (
    select(LINES.table)
    .where(
        LINES.table.c.order_id == bindparam("order_id"),
        LINES.table.c.status == ReservationStatus.RESERVED,
    )
    .order_by(LINES.table.c.sku)
)


async def _locked_stock(session: AsyncSession, skus: Iterable[str]) -> dict[str, StockItem]:
    found = await ITEMS.select(session, _STOCK, {"skus": sorted(set(skus))})
    return {item.sku: item for item in found}


async def _lines(session: AsyncSession, order_id: str) -> list[StockReservation]:
    return await LINES.select(session, _LINES, {"order_id": order_id})


HANDLERS: dict[str, Handler] = {
    ReserveStock.NAME: reserve_stock,
    ReleaseStock.NAME: release_stock,
}
