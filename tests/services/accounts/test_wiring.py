"""Wiring: a command on its exchange reaches the service and commits its effect."""

from __future__ import annotations

from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Settings
from contracts.accounts import RegisterUser, UserStatusChanged
from outbox.db import session_factory
from tests.support.wiring import claimed, deliver_on_its_exchange, outbox_types, ready
from workers.accounts.bootstrap import bootstrap
from workers.accounts.tables import Account


async def test_a_registration_on_its_exchange_is_handled_by_the_service(
    settings: Settings, service_db: AsyncEngine
) -> None:
    spec = bootstrap(settings)
    await ready(spec, service_db)
    command = RegisterUser(user_id=uuid4(), email="grace@example.com", name="Grace")

    message_id = await deliver_on_its_exchange(spec, service_db, settings, command)

    async with session_factory(service_db)() as session:
        account = await session.get(Account, command.user_id)
    assert account is not None and account.status == "ACTIVE"
    assert await claimed(service_db) == [message_id]
    assert await outbox_types(service_db) == {UserStatusChanged.type_name()}
