"""The status projection: OrderStatusChanged moves a view forward, never backward."""

from __future__ import annotations

from typing import Any

from loguru import logger
from sqlalchemy import Integer, bindparam, func, insert, select, update

from contracts.envelope import Envelope
from contracts.orders import OrderStatus, OrderStatusChanged
from gateway.notifier import Notifier
from gateway.tables import HISTORY, VIEWS
from outbox.db import rows
from outbox.tables import UtcDateTime, utcnow
from outbox.unit_of_work import UnitOfWork
from workers.runtime.consumer import Handler

# Built once, run with parameters (see outbox.db.rows).
_CURRENT = (
    select(VIEWS.c.status, VIEWS.c.sequence)
    .where(VIEWS.c.order_id == bindparam("order_id"))
    .with_for_update()
)
_ADD_HISTORY = insert(HISTORY)
_MOVE = (
    update(VIEWS)
    .where(VIEWS.c.order_id == bindparam("view"))
    .values(
        status=bindparam("new_status"),
        reason=bindparam("new_reason"),
        sequence=bindparam("new_sequence"),
        total_cents=func.coalesce(bindparam("new_total", type_=Integer), VIEWS.c.total_cents),
        updated_at=bindparam("now", type_=UtcDateTime()),
    )
)


def status_changed_handler(notifier: Notifier) -> Handler:
    """The projection's handler, waking long-polls after each commit."""

    async def order_status_changed(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        event: OrderStatusChanged = envelope.message
        order_id = str(event.order_id)
        view = (await rows(uow.session, _CURRENT, {"order_id": order_id})).first()
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
            await uow.session.exec(_ADD_HISTORY, params=history)
        changes = {
            "view": order_id,
            "new_status": event.status,
            "new_reason": event.reason,
            "new_sequence": event.sequence,
            "new_total": event.total_cents,
            "now": utcnow(),
        }
        await uow.session.exec(_MOVE, params=changes)
        status = OrderStatus(event.status)
        uow.after_commit(lambda: notifier.changed(order_id, status))

    return order_status_changed
