"""A ReserveStock on its exchange reaches inventory through the in-memory broker."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Settings
from contracts.inventory import ReserveStock, StockReserved
from tests.contracts.samples import sample
from tests.support.wiring import claimed, deliver_on_its_exchange, outbox_types, ready
from workers.inventory.bootstrap import bootstrap


async def test_reserve_stock_on_its_exchange_is_answered_with_a_reservation(
    settings: Settings, service_db: AsyncEngine
) -> None:
    spec = bootstrap(settings)
    await ready(spec, service_db)

    message_id = await deliver_on_its_exchange(spec, service_db, settings, sample(ReserveStock))

    assert {StockReserved.type_name()} <= await outbox_types(service_db)
    assert await claimed(service_db) == [message_id]
