"""A PlaceOrder on its exchange reaches the orders saga through the in-memory broker."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Settings
from contracts.inventory import ReserveStock
from contracts.orders import PlaceOrder
from tests.contracts.samples import sample
from tests.support.wiring import claimed, deliver_on_its_exchange, outbox_types, ready
from workers.orders.bootstrap import bootstrap


async def test_place_order_on_its_exchange_reaches_the_saga_and_reserves_stock(
    settings: Settings, service_db: AsyncEngine
) -> None:
    spec = bootstrap(settings)
    await ready(spec, service_db)

    message_id = await deliver_on_its_exchange(spec, service_db, settings, sample(PlaceOrder))

    assert {ReserveStock.type_name()} <= await outbox_types(service_db)
    assert await claimed(service_db) == [message_id]
