"""The status projection: OrderStatusChanged moves a view forward, never backward (DESIGN §8)."""

from __future__ import annotations

from typing import Any

from loguru import logger
from sqlmodel import col, select

from contracts.envelope import Envelope
from contracts.orders import OrderStatus, OrderStatusChanged
from gateway.notifier import Notifier
from gateway.tables import OrderView, OrderViewHistory
from outbox.tables import utcnow
from outbox.unit_of_work import UnitOfWork
from workers.runtime.consumer import Handler


def status_changed_handler(notifier: Notifier) -> Handler:
    """The projection's handler, waking long-polls after each commit."""

    async def order_status_changed(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        event: OrderStatusChanged = envelope.message
        query = select(OrderView).where(col(OrderView.order_id) == str(event.order_id))
        view = (await uow.session.exec(query.with_for_update())).first()
        if view is None or event.sequence <= view.sequence:
            logger.debug(
                "status {} #{} of {} not newer; ignored",
                event.status,
                event.sequence,
                event.order_id,
            )
            return
        if event.status != view.status:
            uow.session.add(
                OrderViewHistory(
                    order_id=view.order_id,
                    sequence=event.sequence,
                    status=event.status,
                    reason=event.reason,
                )
            )
        view.status, view.reason, view.sequence = event.status, event.reason, event.sequence
        view.total_cents = event.total_cents if event.total_cents is not None else view.total_cents
        view.updated_at = utcnow()
        uow.session.add(view)
        status = OrderStatus(event.status)
        uow.after_commit(lambda: notifier.changed(view.order_id, status))

    return order_status_changed
