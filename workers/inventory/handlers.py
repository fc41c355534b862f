"""Inventory handlers: reserve an order's stock all or nothing, release it on compensation.

Every answer is rebuilt from stored state, so a repeated command gets the same answer. Rows
are locked order first, then stock items in SKU order, so concurrent handlers on PostgreSQL
cannot deadlock; on SQLite the runtime's `BEGIN IMMEDIATE` already serialises writers.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.base import Message, PricedLine
from contracts.envelope import Envelope
from contracts.inventory import ReleaseStock, ReserveStock, StockRejected, StockReserved
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
        uow.session.add(OrderReservation(order_id=str(order_id), status=ReservationStatus.RELEASED))
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
        for line in held:
            _hold(items[line.sku], line.quantity)
            session.add(StockReservation(order_id=order_id, **line.model_dump()))
    session.add(order)
    return order, held


async def _release(session: AsyncSession, order: OrderReservation) -> None:
    lines = await _lines(session, order.order_id)
    items = await _locked_stock(session, (line.sku for line in lines))
    for line in lines:
        _hold(items[line.sku], -line.quantity)
        line.status, line.released_at = ReservationStatus.RELEASED, utcnow()
        session.add(line)
    order.status, order.updated_at = ReservationStatus.RELEASED, utcnow()
    session.add(order)


async def _answer(
    session: AsyncSession, order: OrderReservation, held: list[PricedLine] | None = None
) -> Message:
    """The answer stored state gives; `held`, when given, are the lines it holds (by SKU)."""
    order_id = UUID(order.order_id)
    if order.status == ReservationStatus.RESERVED:
        if held is None:  # read back, which would also flush what this transaction wrote
            held = [
                PricedLine(sku=x.sku, quantity=x.quantity, unit_price_cents=x.unit_price_cents)
                for x in await _lines(session, order.order_id)
            ]
        return StockReserved(order_id=order_id, lines=held)
    if order.status == ReservationStatus.REJECTED:
        return StockRejected(order_id=order_id, sku=order.sku, reason=order.reason or "rejected")
    return StockRejected(order_id=order_id, reason=ORDER_CANCELLED)


def _hold(item: StockItem, quantity: int) -> None:
    """Add `quantity` (negative to give back) to what reservations hold of `item`."""
    item.reserved += quantity
    item.updated_at = utcnow()


async def _locked_order(session: AsyncSession, order_id: UUID) -> OrderReservation | None:
    return await session.get(OrderReservation, str(order_id), with_for_update=True)


# Built once, run with parameters: building a statement costs more than SQLite takes to run it.
_STOCK = (
    select(StockItem)
    .where(col(StockItem.sku).in_(bindparam("skus", expanding=True)))
    .order_by(col(StockItem.sku))
    .with_for_update()
)
_LINES = (
    select(StockReservation)
    .where(
        col(StockReservation.order_id) == bindparam("order_id"),
        col(StockReservation.status) == ReservationStatus.RESERVED,
    )
    .order_by(col(StockReservation.sku))
)


async def _locked_stock(session: AsyncSession, skus: Iterable[str]) -> dict[str, StockItem]:
    found = await session.exec(_STOCK, params={"skus": sorted(set(skus))})
    return {item.sku: item for item in found}


async def _lines(session: AsyncSession, order_id: str) -> list[StockReservation]:
    return list(await session.exec(_LINES, params={"order_id": order_id}))


HANDLERS: dict[str, Handler] = {
    ReserveStock.NAME: reserve_stock,
    ReleaseStock.NAME: release_stock,
}
