"""How the saga stores its state: orders, their history, and cancels that came first.

Core statements built once and run with parameters: no identity map and no flush (see
`outbox.db.rows`). The handlers work on detached `CustomerOrder` objects and save them.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import bindparam, delete, insert, select, text, update

from outbox.db import rows
from outbox.statements import Prepared, loaded
from outbox.tables import core_table, utcnow
from outbox.unit_of_work import UnitOfWork
from workers.orders.tables import CancelTombstone, CustomerOrder, OrderHistory

ORDERS, HISTORY = core_table(CustomerOrder), core_table(OrderHistory)
TOMBSTONES = core_table(CancelTombstone)
_CHANGING = (
    "status",
    "reason",
    "sequence",
    "lines",
    "total_cents",
    "payment_id",
    "carrier",
    "tracking_number",
    "updated_at",
)
_ORDER = select(ORDERS).where(ORDERS.c.order_id == bindparam("order_id")).with_for_update()
# The writes run on the transaction's cursor, compiled once (outbox.statements.Prepared).
_ADD_ORDER = Prepared(insert(ORDERS), [column.name for column in ORDERS.columns])
_ADD_HISTORY = Prepared(insert(HISTORY), ("order_id", "sequence", "status", "reason", "at"))
_SAVE = Prepared(
    update(ORDERS)
    .where(ORDERS.c.order_id == bindparam("saved_order_id"))
    .values({name: bindparam(f"new_{name}", type_=ORDERS.c[name].type) for name in _CHANGING}),
    ("saved_order_id", *(f"new_{name}" for name in _CHANGING)),
)
_TOMBSTONE = select(TOMBSTONES.c.reason).where(TOMBSTONES.c.order_id == bindparam("order_id"))
_ADD_TOMBSTONE = Prepared(insert(TOMBSTONES), ("order_id", "reason", "cancelled_at"))
_DROP_TOMBSTONE = Prepared(
    delete(TOMBSTONES).where(TOMBSTONES.c.order_id == bindparam("order_id")), ("order_id",)
)
# Transaction-scoped, so it is released by the commit or rollback that ends the handler.
_PG_ORDER_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:order_id, 0))")


async def lock(uow: UnitOfWork, order_id: UUID) -> None:
    """Serialise the handlers that may create an order or its tombstone, for this order.

    PlaceOrder and CancelOrder each read what the other writes, in different tables: read
    committed would let two instances miss each other. SQLite's BEGIN IMMEDIATE already
    serialises every writer of the file.
    """
    if uow.session.get_bind().dialect.name == "postgresql":
        await rows(uow.session, _PG_ORDER_LOCK, {"order_id": str(order_id)})


async def load(uow: UnitOfWork, order_id: UUID) -> CustomerOrder | None:
    """The order, locked for this transaction; None if the saga never saw it placed."""
    row = (await rows(uow.session, _ORDER, {"order_id": str(order_id)})).first()
    return None if row is None else loaded(CustomerOrder, row._mapping)


async def add(uow: UnitOfWork, order: CustomerOrder) -> None:
    """Insert a new order."""
    columns = {column.name: getattr(order, column.name) for column in ORDERS.columns}
    await _ADD_ORDER.run(uow.session, columns)


async def save(uow: UnitOfWork, order: CustomerOrder) -> None:
    """Write the changed fields of an order back."""
    changes = {f"new_{name}": getattr(order, name) for name in _CHANGING}
    await _SAVE.run(uow.session, {"saved_order_id": order.order_id, **changes})


async def add_history(uow: UnitOfWork, order: CustomerOrder) -> None:
    """Record the order's current status in its history."""
    step = {"status": order.status, "reason": order.reason, "at": order.updated_at}
    history = {"order_id": order.order_id, "sequence": order.sequence, **step}
    await _ADD_HISTORY.run(uow.session, history)


async def keep_cancel(uow: UnitOfWork, order_id: UUID, reason: str) -> bool:
    """Keep the cancel of an order not placed yet; False if one is kept already (first wins)."""
    params = {"order_id": str(order_id)}
    if (await rows(uow.session, _TOMBSTONE, params)).first() is not None:
        return False
    tombstone = {**params, "reason": reason, "cancelled_at": utcnow()}
    await _ADD_TOMBSTONE.run(uow.session, tombstone)
    return True


async def take_cancel(uow: UnitOfWork, order_id: UUID) -> str | None:
    """The reason of a cancel kept for this order, removing it; None if there is none."""
    params = {"order_id": str(order_id)}
    reason: str | None = (await rows(uow.session, _TOMBSTONE, params)).scalar()
    if reason is not None:
        await _DROP_TOMBSTONE.run(uow.session, params)
    return reason
