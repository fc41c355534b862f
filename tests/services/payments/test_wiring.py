"""A CapturePayment on its exchange reaches payments through the in-memory broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Environment, Settings
from contracts.payments import CapturePayment, PaymentDeclined
from outbox.db import create_engine
from tests.contracts.samples import sample
from tests.support.wiring import claimed, deliver_on_its_exchange, outbox_types, ready
from workers.payments.bootstrap import bootstrap


@pytest.fixture
async def service_db(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'payments.db'}")
    yield engine
    await engine.dispose()


async def test_capture_payment_on_its_exchange_is_answered_with_the_cards_outcome(
    tmp_path: Path, service_db: AsyncEngine
) -> None:
    settings = Settings(env=Environment.TEST, var_dir=tmp_path)
    spec = bootstrap(settings)
    await ready(spec, service_db)

    message_id = await deliver_on_its_exchange(spec, service_db, settings, sample(CapturePayment))

    assert {PaymentDeclined.type_name()} <= await outbox_types(service_db)
    assert await claimed(service_db) == [message_id]
