"""A CapturePayment on its exchange reaches payments through the in-memory broker."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Settings
from contracts.payments import CapturePayment, PaymentDeclined
from tests.contracts.samples import sample
from tests.support.wiring import claimed, deliver_on_its_exchange, outbox_types, ready
from workers.payments.bootstrap import bootstrap


async def test_capture_payment_on_its_exchange_is_answered_with_the_cards_outcome(
    settings: Settings, service_db: AsyncEngine
) -> None:
    spec = bootstrap(settings)
    await ready(spec, service_db)

    message_id = await deliver_on_its_exchange(spec, service_db, settings, sample(CapturePayment))

    assert {PaymentDeclined.type_name()} <= await outbox_types(service_db)
    assert await claimed(service_db) == [message_id]
