"""A deactivated user's open carts are abandoned: nothing can be checked out of them any more."""

from __future__ import annotations

from sqlalchemy import update

from contracts.accounts import UserStatus, UserStatusChanged
from contracts.envelope import Envelope
from outbox.tables import core_table, utcnow
from outbox.unit_of_work import UnitOfWork
from workers.carts.model import CartStatus
from workers.carts.tables import Cart
from workers.runtime.consumer import Handler

CARTS = core_table(Cart)


async def user_status_changed(envelope: Envelope[UserStatusChanged], uow: UnitOfWork) -> None:
    """Only a deactivation matters here; applying it twice changes nothing."""
    event = envelope.message
    if event.status is not UserStatus.DEACTIVATED:
        return
    abandon = (
        update(CARTS)
        .where(CARTS.c.user_id == str(event.user_id), CARTS.c.status == CartStatus.OPEN.value)
        .values(status=CartStatus.ABANDONED.value, updated_at=utcnow())
    )
    await uow.session.exec(abandon)


HANDLERS: dict[str, Handler] = {UserStatusChanged.NAME: user_status_changed}
