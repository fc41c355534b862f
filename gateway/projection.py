"""The status projection: OrderStatusChanged moves a view forward, never backward (DESIGN §8)."""

from __future__ import annotations

from typing import Any

from loguru import logger
from sqlalchemy import insert, select, update

from contracts.envelope import Envelope
from contracts.orders import OrderStatus, OrderStatusChanged
from gateway.notifier import Notifier
from gateway.tables import HISTORY, VIEWS
from outbox.db import rows
from outbox.tables import utcnow
from outbox.unit_of_work import UnitOfWork
from workers.runtime.consumer import Handler


def status_changed_handler(notifier: Notifier) -> Handler:
    """The projection's handler, waking long-polls after each commit."""

    async def order_status_changed(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        event: OrderStatusChanged = envelope.message
        order_id = str(event.order_id)
        query = select(VIEWS.c.status, VIEWS.c.sequence).where(VIEWS.c.order_id == order_id)
        view = (await rows(uow.session, query.with_for_update())).first()
        if view is None or event.sequence <= view.sequence:
            logger.debug(
                "status {} #{} of {} not newer; ignored",
                event.status,
                event.sequence,
                event.order_id,
            )
            return
        if event.status != view.status:
            step = {"status": event.status, "reason": event.reason, "at": utcnow()}
            history = {"order_id": order_id, "sequence": event.sequence, **step}
            await uow.session.exec(insert(HISTORY).values(history))
        changes: dict[str, Any] = {
            "status": event.status,
            "reason": event.reason,
            "sequence": event.sequence,
            "updated_at": utcnow(),
        }
        if event.total_cents is not None:
            changes["total_cents"] = event.total_cents
        await uow.session.exec(update(VIEWS).where(VIEWS.c.order_id == order_id).values(changes))
        status = OrderStatus(event.status)
        uow.after_commit(lambda: notifier.changed(order_id, status))

    return order_status_changed
