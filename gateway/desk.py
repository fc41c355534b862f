"""The order desk: turns HTTP requests into stored views and outbox commands.

It never talks to RabbitMQ: an accepted order is a status row and a PlaceOrder in the gateway's
outbox, committed together; the relay publishes it whenever the broker is there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope
from contracts.orders import CancelOrder, OrderStatus
from gateway.notifier import Notifier
from gateway.placing import Placement, Placer
from gateway.problems import ProblemError
from gateway.schemas import OrderOut, PlaceOrderRequest, order_out
from gateway.tables import HISTORY, VIEWS
from outbox.db import SessionFactory, rows
from outbox.tables import utcnow
from outbox.unit_of_work import UnitOfWork
from workers.runtime import tracing

NOT_FOUND = ProblemError(404, "Order not found", "No order with this id belongs to your API key.")


class OrderDesk:
    """Places, shows and cancels orders for API clients."""

    def __init__(
        self,
        sessions: SessionFactory,
        reads: SessionFactory,
        notifier: Notifier,
        on_commit: Callable[[], None],
        spans: tracing.Spans | None = None,
    ) -> None:
        self._spans = spans or tracing.Spans("gateway")
        self._sessions, self._reads = sessions, reads
        self._notifier, self._on_commit = notifier, on_commit
        self._placer = Placer(self._uow, _show, self._spans)

    def _uow(self) -> UnitOfWork:
        return UnitOfWork(self._sessions, on_commit=self._on_commit)

    async def place(
        self, client: str, body: PlaceOrderRequest, key: str | None, traceparent: str | None = None
    ) -> tuple[OrderOut, bool]:
        """Accept an order: `(order, created)`; a repeated key and body returns the first order."""
        return await self._placer.place(Placement(client, body, key, traceparent))

    async def get(self, client: str, order_id: str) -> OrderOut:
        """The client's order, or a 404 problem."""
        async with self._reads() as session:
            return await _show(session, client, order_id)

    async def wait(self, client: str, order_id: str, seconds: float) -> OrderOut:
        """The order as soon as it is terminal, or as it is after `seconds`."""
        deadline = time.monotonic() + seconds
        order, stale = await self.get(client, order_id), False
        while not order.status.is_terminal and not self._notifier.closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            news = await self._notifier.wait(order_id, min(remaining, 1.0))
            stale = news is not None and not news.is_terminal  # an intermediate step: skip reading
            if not stale:
                order = await self.get(client, order_id)
        return await self.get(client, order_id) if stale or self._notifier.closing else order

    async def cancel(self, client: str, order_id: str) -> OrderOut:
        """Ask the saga to cancel; refused once the order is terminal."""
        async with self._uow() as uow:
            order = await _show(uow.session, client, order_id)
            if order.status.is_terminal:
                raise ProblemError(
                    409, "Order cannot be cancelled", f"The order is already {order.status}."
                )
            command = CancelOrder(order_id=uuid.UUID(order_id), reason="cancelled by customer")
            uow.publish(Envelope(command, correlation_id=order_id))
            await uow.commit()
        return order

    async def open_view(self, client: str, order_id: str, currency: str = "EUR") -> None:
        """A PENDING view, before another service places the order (a checkout): its status
        events then always find it. Its items are filled once the order's lines are known."""
        now = utcnow()
        view: dict[str, Any] = {
            "order_id": order_id,
            "client": client,
            "customer_id": client.rpartition(":")[2][:64],
            "status": OrderStatus.PENDING.value,
            "reason": None,
            "sequence": 0,
            "items": [],
            "total_cents": None,
            "currency": currency,
            "created_at": now,
            "updated_at": now,
        }
        accepted = {"order_id": order_id, "sequence": 0, "status": view["status"]}
        async with self._sessions() as session:
            if (await rows(session, _VIEW, {"order_id": order_id})).first() is not None:
                return
            try:
                await session.exec(_ADD_VIEW, params=view)
                await session.exec(
                    _ADD_HISTORY, params=accepted | {"reason": "accepted", "at": now}
                )
                await session.commit()
            except IntegrityError:  # the same checkout, retried at once, opened it
                await session.rollback()

    async def fill_view(self, client: str, order_id: str, items: list[dict[str, Any]]) -> OrderOut:
        """The opened view with the order's lines; the order as its client sees it."""
        async with self._sessions() as session:
            await session.exec(_FILL, params={"id": order_id, "lines": items})
            await session.commit()
        return await self.get(client, order_id)

    async def drop_view(self, order_id: str) -> None:
        """Forget a view opened for a checkout that was refused (no order was made)."""
        async with self._sessions() as session:
            await session.exec(_DROP_HISTORY, params={"id": order_id})
            await session.exec(_DROP, params={"id": order_id})
            await session.commit()


# Built once, run with parameters (see outbox.db.rows).
_VIEW = select(VIEWS).where(VIEWS.c.order_id == bindparam("order_id"))
# One statement shows an order: its view on every row, one row per history entry (or one without).
_STEP = ("sequence", "status", "reason", "at")
_SHOW = (
    select(VIEWS, *(HISTORY.c[c].label(f"h_{c}") for c in _STEP))
    .outerjoin(HISTORY, HISTORY.c.order_id == VIEWS.c.order_id)
    .where(VIEWS.c.order_id == bindparam("order_id"))
    .order_by(HISTORY.c.sequence)
)
_ADD_VIEW, _ADD_HISTORY = insert(VIEWS), insert(HISTORY)
_FILL = update(VIEWS).where(VIEWS.c.order_id == bindparam("id")).values(items=bindparam("lines"))
_UNTOUCHED = (VIEWS.c.order_id == bindparam("id"), VIEWS.c.sequence == 0)
_DROP = delete(VIEWS).where(*_UNTOUCHED)
_DROP_HISTORY = delete(HISTORY).where(
    HISTORY.c.order_id == bindparam("id"),
    HISTORY.c.order_id.in_(select(VIEWS.c.order_id).where(*_UNTOUCHED)),
)


async def _show(session: AsyncSession, client: str, order_id: str) -> OrderOut:
    found = (await rows(session, _SHOW, {"order_id": order_id})).all()
    if not found or found[0].client != client:
        raise NOT_FOUND
    history = [SimpleNamespace(**{c: getattr(r, f"h_{c}") for c in _STEP}) for r in found]
    return order_out(found[0], [step for step in history if step.sequence is not None])
