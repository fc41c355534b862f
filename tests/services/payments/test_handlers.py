"""Payments through the real bootstrap and handlers, on SQLite, with a recording outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from config.settings import Environment, Settings
from contracts.base import Message
from contracts.envelope import Envelope
from contracts.payments import (
    CapturePayment,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    RefundPayment,
)
from outbox.db import SessionFactory, create_engine, create_tables, session_factory
from tests.support.fakes import RecordingUnitOfWork
from workers.payments.bootstrap import bootstrap
from workers.payments.model import ALREADY_CANCELLED, ChargeOutcome
from workers.payments.provider import CardProvider, SimulatedCardProvider
from workers.payments.queries import payments_by_order, total_charged_cents
from workers.payments.tables import Payment
from workers.runtime.errors import TransientError
from workers.runtime.service import ServiceSpec


class UnavailableProvider(CardProvider):
    """A provider that is down: every call times out."""

    async def capture(
        self, order_id: UUID, token: str, amount_cents: int, currency: str
    ) -> ChargeOutcome:
        raise TransientError("card provider unavailable")

    async def refund(self, order_id: UUID) -> str | None:
        raise TransientError("card provider unavailable")


@dataclass
class PaymentsWorker:
    spec: ServiceSpec
    sessions: SessionFactory
    sent: list[Envelope[Any]]  # messages of committed units of work only

    async def deliver(self, message: Message, *, commit: bool = True) -> None:
        """Handle `message` in a fresh envelope (a new message id), as the runtime would."""
        async with RecordingUnitOfWork(self.sessions) as uow:
            await self.spec.handlers[message.NAME](Envelope(message), uow)
            if commit:
                await uow.commit()
                self.sent.extend(uow.published)

    async def payment(self, order_id: UUID) -> Payment | None:
        async with self.sessions() as session:
            return await session.get(Payment, order_id)

    def events(self, kind: type[Message]) -> list[Any]:
        return [e.message for e in self.sent if isinstance(e.message, kind)]


@pytest.fixture
def provider() -> SimulatedCardProvider:
    return SimulatedCardProvider()


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[SessionFactory]:
    engine = create_engine(f"sqlite+inline:///{tmp_path / 'payments.db'}")
    await create_tables(engine, bootstrap(Settings(env=Environment.TEST)).tables)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def worker(sessions: SessionFactory, provider: SimulatedCardProvider) -> PaymentsWorker:
    spec = bootstrap(Settings(env=Environment.TEST), provider=provider)
    return PaymentsWorker(spec, sessions, [])


def capture(order_id: UUID, token: str = "tok_visa", amount_cents: int = 4200) -> CapturePayment:
    return CapturePayment(order_id=order_id, amount_cents=amount_cents, currency="EUR", token=token)


def refund(order_id: UUID) -> RefundPayment:
    return RefundPayment(order_id=order_id, reason="customer cancelled")


def test_bootstrap_handles_every_message_of_the_payments_queue() -> None:
    spec = bootstrap(Settings(env=Environment.TEST))

    assert spec.name == "payments"
    assert spec.subscription.queue == "payments.payments"
    assert set(spec.handlers) == set(spec.subscription.messages)


async def test_visa_is_captured_once_even_when_asked_twice(
    worker: PaymentsWorker, provider: SimulatedCardProvider
) -> None:
    order_id = uuid4()

    await worker.deliver(capture(order_id))
    await worker.deliver(capture(order_id))

    row = await worker.payment(order_id)
    assert row is not None and row.status == "captured" and row.amount_cents == 4200
    assert list(provider.charges) == [order_id]
    replies = worker.events(PaymentCaptured)
    assert len(replies) == 2
    assert {r.payment_id for r in replies} == {row.payment_id}
    assert row.payment_id is not None and row.payment_id.startswith("pay_")


async def test_a_declined_card_is_declined_and_charges_nothing(
    worker: PaymentsWorker, provider: SimulatedCardProvider
) -> None:
    order_id = uuid4()

    await worker.deliver(capture(order_id, token="tok_declined"))
    await worker.deliver(capture(order_id, token="tok_declined"))

    row = await worker.payment(order_id)
    assert row is not None and row.status == "declined"
    assert provider.charges == {}
    assert [r.reason for r in worker.events(PaymentDeclined)] == ["card declined"] * 2
    assert worker.events(PaymentCaptured) == []


async def test_an_unknown_card_is_declined(
    worker: PaymentsWorker, provider: SimulatedCardProvider
) -> None:
    order_id = uuid4()

    await worker.deliver(capture(order_id, token="tok_mastercard"))

    assert [r.reason for r in worker.events(PaymentDeclined)] == ["unknown card"]
    assert provider.charges == {}


async def test_a_flaky_card_fails_twice_then_is_captured_once(
    worker: PaymentsWorker, provider: SimulatedCardProvider
) -> None:
    order_id = uuid4()

    for _ in range(2):
        with pytest.raises(TransientError):
            await worker.deliver(capture(order_id, token="tok_flaky"))
        assert await worker.payment(order_id) is None
    await worker.deliver(capture(order_id, token="tok_flaky"))

    row = await worker.payment(order_id)
    assert row is not None and row.status == "captured"
    assert list(provider.charges) == [order_id]
    assert [r.payment_id for r in worker.events(PaymentCaptured)] == [row.payment_id]


async def test_a_capture_whose_transaction_was_lost_is_not_charged_again(
    worker: PaymentsWorker, provider: SimulatedCardProvider
) -> None:
    order_id = uuid4()

    await worker.deliver(capture(order_id), commit=False)  # crash before commit
    await worker.deliver(capture(order_id))

    row = await worker.payment(order_id)
    assert row is not None and row.payment_id == provider.charges[order_id].payment_id
    assert len(provider.charges) == 1
    assert len(worker.events(PaymentCaptured)) == 1


async def test_a_refund_after_capture_refunds_once_even_when_asked_twice(
    worker: PaymentsWorker, provider: SimulatedCardProvider
) -> None:
    order_id = uuid4()
    await worker.deliver(capture(order_id))

    await worker.deliver(refund(order_id))
    await worker.deliver(refund(order_id))

    row = await worker.payment(order_id)
    assert row is not None and row.status == "refunded" and row.refunded_at is not None
    assert provider.refunds == {order_id: row.payment_id}
    refunds = worker.events(PaymentRefunded)
    assert [(r.payment_id, r.amount_cents) for r in refunds] == [(row.payment_id, 4200)] * 2
    async with worker.sessions() as session:
        assert await total_charged_cents(session) == 0


async def test_a_refund_before_capture_voids_the_later_capture(
    worker: PaymentsWorker, provider: SimulatedCardProvider
) -> None:
    order_id = uuid4()

    await worker.deliver(refund(order_id))
    await worker.deliver(capture(order_id))

    row = await worker.payment(order_id)
    assert row is not None and row.status == "voided"
    assert provider.charges == {}
    assert worker.events(PaymentRefunded) == []
    assert [r.reason for r in worker.events(PaymentDeclined)] == [ALREADY_CANCELLED]


async def test_a_refund_of_a_declined_payment_changes_nothing(worker: PaymentsWorker) -> None:
    order_id = uuid4()
    await worker.deliver(capture(order_id, token="tok_declined"))

    await worker.deliver(refund(order_id))

    row = await worker.payment(order_id)
    assert row is not None and row.status == "declined" and row.refunded_at is None
    assert worker.events(PaymentRefunded) == []


async def test_a_capture_repeated_after_its_refund_answers_nothing_new(
    worker: PaymentsWorker, provider: SimulatedCardProvider
) -> None:
    order_id = uuid4()
    await worker.deliver(capture(order_id))
    await worker.deliver(refund(order_id))

    await worker.deliver(capture(order_id))

    row = await worker.payment(order_id)
    assert row is not None and row.status == "refunded"
    assert len(provider.charges) == 1
    assert len(worker.events(PaymentCaptured)) == 1


async def test_an_unavailable_provider_leaves_no_trace_and_asks_for_a_retry(
    sessions: SessionFactory,
) -> None:
    worker = PaymentsWorker(
        bootstrap(Settings(env=Environment.TEST), provider=UnavailableProvider()), sessions, []
    )
    order_id = uuid4()

    with pytest.raises(TransientError):
        await worker.deliver(capture(order_id))

    assert await worker.payment(order_id) is None
    assert worker.sent == []


async def test_the_conservation_view_counts_only_money_still_held(
    worker: PaymentsWorker,
) -> None:
    kept, refunded, declined = uuid4(), uuid4(), uuid4()
    await worker.deliver(capture(kept, amount_cents=1000))
    await worker.deliver(capture(refunded, amount_cents=500))
    await worker.deliver(refund(refunded))
    await worker.deliver(capture(declined, token="tok_declined", amount_cents=700))

    async with worker.sessions() as session:
        view = await payments_by_order(session)
        total = await total_charged_cents(session)

    assert {k: (v.status, v.charged_cents) for k, v in view.items()} == {
        kept: ("captured", 1000),
        refunded: ("refunded", 0),
        declined: ("declined", 0),
    }
    assert total == 1000


async def test_a_refund_after_a_charge_whose_record_was_lost_gives_the_money_back(
    worker: PaymentsWorker, provider: SimulatedCardProvider
) -> None:
    order_id = uuid4()
    await worker.deliver(capture(order_id), commit=False)  # charged, then the worker died

    await worker.deliver(refund(order_id))  # before the capture's redelivery
    await worker.deliver(capture(order_id))

    row = await worker.payment(order_id)
    assert row is not None and row.status == "voided"
    assert provider.refunds == {order_id: provider.charges[order_id].payment_id}
    assert row.payment_id == provider.charges[order_id].payment_id
    assert [r.reason for r in worker.events(PaymentDeclined)] == [ALREADY_CANCELLED]
    async with worker.sessions() as session:
        assert await total_charged_cents(session) == 0
