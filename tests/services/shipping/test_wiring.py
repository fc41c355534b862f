"""An ArrangeShipment on its exchange reaches shipping through the in-memory broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Environment, Settings
from contracts.shipping import ArrangeShipment, ShipmentArranged
from outbox.db import create_engine
from tests.contracts.samples import sample
from tests.support.wiring import claimed, deliver_on_its_exchange, outbox_types, ready
from workers.shipping.bootstrap import bootstrap


@pytest.fixture
async def service_db(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'shipping.db'}")
    yield engine
    await engine.dispose()


async def test_arrange_shipment_on_its_exchange_arranges_the_shipment(
    tmp_path: Path, service_db: AsyncEngine
) -> None:
    settings = Settings(env=Environment.TEST, var_dir=tmp_path)
    spec = bootstrap(settings)
    await ready(spec, service_db)

    message_id = await deliver_on_its_exchange(spec, service_db, settings, sample(ArrangeShipment))

    assert {ShipmentArranged.type_name()} <= await outbox_types(service_db)
    assert await claimed(service_db) == [message_id]
