"""An ArrangeShipment on its exchange reaches shipping through the in-memory broker."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Settings
from contracts.shipping import ArrangeShipment, ShipmentArranged
from tests.contracts.samples import sample
from tests.support.wiring import claimed, deliver_on_its_exchange, outbox_types, ready
from workers.shipping.bootstrap import bootstrap


async def test_arrange_shipment_on_its_exchange_arranges_the_shipment(
    settings: Settings, service_db: AsyncEngine
) -> None:
    spec = bootstrap(settings)
    await ready(spec, service_db)

    message_id = await deliver_on_its_exchange(spec, service_db, settings, sample(ArrangeShipment))

    assert {ShipmentArranged.type_name()} <= await outbox_types(service_db)
    assert await claimed(service_db) == [message_id]
