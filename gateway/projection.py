"""The status projection: OrderStatusChanged moves a view forward, never backward."""

from __future__ import annotations

from typing import Any

from loguru import logger
from sqlalchemy import Integer, String, bindparam, func, insert, select, update

from contracts.envelope import Envelope
from contracts.orders import OrderStatus, OrderStatusChanged
from gateway.notifier import Notifier
from gateway.tables import HISTORY, VIEWS
from outbox.statements import Prepared
from outbox.tables import UtcDateTime, utcnow
from outbox.unit_of_work import UnitOfWork
from workers.runtime.consumer import Handler

# Compiled once, run on the transaction's cursor (outbox.statements.Prepared; a row's extra
# keys are not sent). Two statements per status, no read:
# the history gains the status if the view is older and in another status (the row is locked
# on PostgreSQL, so a concurrent newer status is seen), then the view moves if it is older.
_NEWER = (VIEWS.c.order_id == bindparam("view"), VIEWS.c.sequence < bindparam("new_sequence"))
_CHANGES = ("view", "new_status", "new_reason", "new_sequence", "new_total", "now")
_ADD_STEP = Prepared(
    insert(HISTORY).from_select(
        ["order_id", "sequence", "status", "reason", "at"],
        select(
            bindparam("view", type_=String()),
            bindparam("new_sequence", type_=Integer()),
            bindparam("new_status", type_=String()),
            bindparam("new_reason", type_=String()),
            bindparam("now", type_=UtcDateTime()),
        )
        .where(*_NEWER, VIEWS.c.status != bindparam("new_status"))
        .with_for_update(),
    ),
    [name for name in _CHANGES if name != "new_total"],
)
_MOVE = Prepared(
    update(VIEWS)
    .where(*_NEWER)
    .values(
        status=bindparam("new_status"),
        reason=bindparam("new_reason"),
        sequence=bindparam("new_sequence"),
        total_cents=func.coalesce(bindparam("new_total", type_=Integer), VIEWS.c.total_cents),
        updated_at=bindparam("now", type_=UtcDateTime()),
    ),
    _CHANGES,
)


def status_changed_handler(notifier: Notifier) -> Handler:
    """The projection's handler, waking long-polls after each commit."""

    async def order_status_changed(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        event: OrderStatusChanged = envelope.message
        order_id = str(event.order_id)
        changes = {
            "view": order_id,
            "new_status": event.status,
            "new_reason": event.reason,
            "new_sequence": event.sequence,
            "new_total": event.total_cents,
            "now": utcnow(),
        }
        await _ADD_STEP.run(uow.session, changes)
        if not await _MOVE.run(uow.session, changes):
            logger.debug(
                "status {} #{} of {} not newer; ignored",
                event.status,
                event.sequence,
                event.order_id,
            )
            return
        status = OrderStatus(event.status)
        uow.after_commit(lambda: notifier.changed(order_id, status))

    return order_status_changed
