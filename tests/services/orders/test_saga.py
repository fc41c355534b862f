"""The order saga's transitions, through the real bootstrap, on a real SQLite file, with fakes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from config.settings import Settings
from contracts.base import Message, PricedLine
from contracts.envelope import Envelope
from contracts.inventory import ReleaseStock, ReserveStock, StockRejected, StockReserved
from contracts.orders import (
    CancelOrder,
    OrderStatus,
    OrderStatusChanged,
    PlaceOrder,
    SagaStep,
    StepTimedOut,
)
from contracts.payments import CapturePayment, PaymentCaptured, PaymentDeclined, RefundPayment
from contracts.shipping import ArrangeShipment, CancelShipment, ShipmentArranged
from outbox.db import SessionFactory, create_engine, create_tables, session_factory
from outbox.tables import utcnow
from tests.contracts.samples import sample
from tests.support.fakes import RecordingUnitOfWork
from workers.orders.bootstrap import bootstrap
from workers.orders.settings import OrdersSettings
from workers.orders.tables import TABLES, CancelTombstone, CustomerOrder, OrderHistory
from workers.runtime.service import ServiceSpec


class Saga:
    """Feeds messages to the orders handlers as the runtime would, one transaction each."""

    def __init__(self, spec: ServiceSpec, sessions: SessionFactory) -> None:
        self.spec, self.sessions = spec, sessions
        self.order_id = uuid.uuid4()

    async def send(self, message: Message) -> RecordingUnitOfWork:
        async with RecordingUnitOfWork(self.sessions) as uow:
            await self.spec.handlers[message.NAME](Envelope(message), uow)
            await uow.commit()
        return uow

    async def place(self) -> RecordingUnitOfWork:
        order = sample(PlaceOrder)
        return await self.send(order.model_copy(update={"order_id": self.order_id}))

    async def order(self) -> CustomerOrder:
        async with self.sessions() as session:
            found = await session.get(CustomerOrder, str(self.order_id))
            assert found is not None
            return found

    async def history(self) -> list[OrderStatus]:
        async with self.sessions() as session:
            query = select(OrderHistory).where(col(OrderHistory.order_id) == str(self.order_id))
            rows = (await session.exec(query.order_by(col(OrderHistory.sequence)))).all()
            return [row.status for row in rows]

    async def age(self, seconds: float) -> None:
        """Pretend the order's current step started `seconds` ago."""
        async with self.sessions() as session:
            order = await session.get(CustomerOrder, str(self.order_id))
            assert order is not None
            order.updated_at = utcnow() - timedelta(seconds=seconds)
            session.add(order)
            await session.commit()

    def lines(self) -> list[PricedLine]:
        return [PricedLine(sku="MUG-7", quantity=2, unit_price_cents=1250)]

    async def to_paid(self) -> None:
        await self.place()
        await self.send(StockReserved(order_id=self.order_id, lines=self.lines()))
        await self.send(
            PaymentCaptured(
                order_id=self.order_id, payment_id="pay-1", amount_cents=2500, currency="EUR"
            )
        )


def kinds(uow: RecordingUnitOfWork) -> list[type[Any]]:
    return [type(envelope.message) for envelope in uow.published]


@pytest.fixture
async def saga(tmp_path: Path) -> AsyncIterator[Saga]:
    engine = create_engine(f"sqlite+inline:///{tmp_path / 'orders.db'}")
    await create_tables(engine, TABLES)
    own = OrdersSettings(
        _env_file=None, reserve_timeout_s=5, payment_timeout_s=7, shipment_timeout_s=9
    )
    yield Saga(bootstrap(Settings(_env_file=None), own), session_factory(engine))
    await engine.dispose()


async def test_placing_an_order_reserves_stock_announces_pending_and_arms_the_reserve_timer(
    saga: Saga,
) -> None:
    uow = await saga.place()
    order = await saga.order()
    assert (order.status, order.sequence) == (OrderStatus.PENDING, 1)
    assert kinds(uow) == [OrderStatusChanged, ReserveStock]
    [(timer, queue, delay)] = uow.scheduled
    assert timer.message == StepTimedOut(
        order_id=saga.order_id, step=SagaStep.RESERVE_STOCK, sequence=1
    )
    assert (queue, delay) == ("orders.saga", timedelta(seconds=5))


async def test_a_second_place_order_for_the_same_order_changes_nothing(saga: Saga) -> None:
    await saga.place()
    again = await saga.place()
    assert again.published == [] and again.scheduled == []
    assert (await saga.order()).sequence == 1


async def test_the_happy_path_ends_confirmed_with_every_status_in_sequence(saga: Saga) -> None:
    await saga.place()
    reserved = await saga.send(StockReserved(order_id=saga.order_id, lines=saga.lines()))
    assert kinds(reserved) == [OrderStatusChanged, CapturePayment]
    assert reserved.scheduled == []  # the reserve timer covers payment (7 s >= 5 s) too
    assert reserved.published[1].message.amount_cents == 2500
    paid = await saga.send(
        PaymentCaptured(
            order_id=saga.order_id, payment_id="pay-1", amount_cents=2500, currency="EUR"
        )
    )
    assert kinds(paid) == [OrderStatusChanged, ArrangeShipment]
    assert paid.scheduled == []
    shipped = await saga.send(
        ShipmentArranged(order_id=saga.order_id, carrier="DHL", tracking_number="T1")
    )
    assert kinds(shipped) == [OrderStatusChanged]
    order = await saga.order()
    assert (order.status, order.sequence, order.total_cents) == (OrderStatus.CONFIRMED, 4, 2500)
    assert await saga.history() == [
        OrderStatus.PENDING,
        OrderStatus.STOCK_RESERVED,
        OrderStatus.PAID,
        OrderStatus.CONFIRMED,
    ]


async def test_out_of_stock_rejects_the_order_naming_the_sku_and_charges_nothing(
    saga: Saga,
) -> None:
    await saga.place()
    uow = await saga.send(
        StockRejected(order_id=saga.order_id, sku="MUG-7", reason="insufficient stock for MUG-7")
    )
    order = await saga.order()
    assert order.status == OrderStatus.REJECTED
    assert "MUG-7" in (order.reason or "")
    assert CapturePayment not in kinds(uow)


async def test_a_declined_card_cancels_the_order_and_releases_the_stock(saga: Saga) -> None:
    await saga.place()
    await saga.send(StockReserved(order_id=saga.order_id, lines=saga.lines()))
    uow = await saga.send(PaymentDeclined(order_id=saga.order_id, reason="card declined"))
    assert (await saga.order()).status == OrderStatus.CANCELLED
    assert kinds(uow) == [ReleaseStock, OrderStatusChanged]


async def test_a_payment_timeout_cancels_and_compensates_and_a_late_capture_changes_nothing(
    saga: Saga,
) -> None:
    await saga.place()
    await saga.send(StockReserved(order_id=saga.order_id, lines=saga.lines()))
    await saga.age(7.5)
    timer = StepTimedOut(order_id=saga.order_id, step=SagaStep.RESERVE_STOCK, sequence=1)
    timed_out = await saga.send(timer)  # armed for the reserve step; payment is what timed out
    order = await saga.order()
    assert order.status == OrderStatus.CANCELLED
    assert order.reason == "timeout: capture_payment got no answer within 7s"
    assert kinds(timed_out) == [ReleaseStock, RefundPayment, OrderStatusChanged]

    late = await saga.send(
        PaymentCaptured(
            order_id=saga.order_id, payment_id="pay-1", amount_cents=2500, currency="EUR"
        )
    )
    assert late.published == []
    assert (await saga.order()).sequence == order.sequence


async def test_a_timer_whose_step_answered_re_arms_for_what_is_left_of_the_current_step(
    saga: Saga,
) -> None:
    await saga.place()
    await saga.send(StockReserved(order_id=saga.order_id, lines=saga.lines()))
    await saga.age(2)
    fired = await saga.send(
        StepTimedOut(order_id=saga.order_id, step=SagaStep.RESERVE_STOCK, sequence=1)
    )
    assert fired.published == []
    assert (await saga.order()).status == OrderStatus.STOCK_RESERVED
    [(timer, queue, delay)] = fired.scheduled
    assert timer.message == StepTimedOut(
        order_id=saga.order_id, step=SagaStep.CAPTURE_PAYMENT, sequence=2
    )
    assert queue == "orders.saga"
    assert timedelta(seconds=4) < delay <= timedelta(seconds=5)


async def test_a_timer_for_a_finished_order_changes_nothing(saga: Saga) -> None:
    await saga.to_paid()
    await saga.send(ShipmentArranged(order_id=saga.order_id, carrier="DHL", tracking_number="T1"))
    await saga.age(60)
    fired = await saga.send(
        StepTimedOut(order_id=saga.order_id, step=SagaStep.RESERVE_STOCK, sequence=1)
    )
    assert fired.published == [] and fired.scheduled == []
    assert (await saga.order()).status == OrderStatus.CONFIRMED


async def test_a_step_shorter_than_an_earlier_one_arms_its_own_timer(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+inline:///{tmp_path / 'short.db'}")
    await create_tables(engine, TABLES)
    own = OrdersSettings(
        _env_file=None, reserve_timeout_s=30, payment_timeout_s=4, shipment_timeout_s=60
    )
    saga = Saga(bootstrap(Settings(_env_file=None), own), session_factory(engine))
    try:
        await saga.place()
        reserved = await saga.send(StockReserved(order_id=saga.order_id, lines=saga.lines()))
        [(timer, _, delay)] = reserved.scheduled
        assert timer.message.step == SagaStep.CAPTURE_PAYMENT
        assert delay == timedelta(seconds=4)
        await saga.age(2)  # the reserve timer fires early in the payment step: no second timer
        fired = await saga.send(
            StepTimedOut(order_id=saga.order_id, step=SagaStep.RESERVE_STOCK, sequence=1)
        )
        assert fired.scheduled == [] and fired.published == []
    finally:
        await engine.dispose()


async def test_cancel_before_shipping_undoes_stock_payment_and_shipment(saga: Saga) -> None:
    await saga.to_paid()
    uow = await saga.send(CancelOrder(order_id=saga.order_id))
    assert kinds(uow) == [ReleaseStock, RefundPayment, CancelShipment, OrderStatusChanged]
    assert (await saga.order()).status == OrderStatus.CANCELLED


async def test_cancel_after_the_shipment_is_arranged_is_refused(saga: Saga) -> None:
    await saga.to_paid()
    await saga.send(ShipmentArranged(order_id=saga.order_id, carrier="DHL", tracking_number="T1"))
    uow = await saga.send(CancelOrder(order_id=saga.order_id))
    assert uow.published == []
    assert (await saga.order()).status == OrderStatus.CONFIRMED


async def test_a_cancel_before_its_order_is_kept_and_the_order_then_starts_cancelled(
    saga: Saga,
) -> None:
    early = await saga.send(CancelOrder(order_id=saga.order_id, reason="changed my mind"))
    assert early.published == [] and early.scheduled == []

    placed = await saga.place()
    order = await saga.order()
    assert (order.status, order.reason, order.sequence) == (
        OrderStatus.CANCELLED,
        "changed my mind",
        1,
    )
    assert kinds(placed) == [OrderStatusChanged]  # no stock reserved, nothing to charge
    assert placed.published[0].message.status == OrderStatus.CANCELLED
    assert placed.scheduled == []
    assert await saga.history() == [OrderStatus.CANCELLED]


async def test_a_cancel_twice_before_its_order_keeps_the_first_and_the_order_ends_cancelled(
    saga: Saga,
) -> None:
    await saga.send(CancelOrder(order_id=saga.order_id, reason="first"))
    again = await saga.send(CancelOrder(order_id=saga.order_id, reason="second"))
    assert again.published == []
    await saga.place()
    late = await saga.send(CancelOrder(order_id=saga.order_id, reason="third"))
    assert late.published == []
    order = await saga.order()
    assert (order.status, order.reason, order.sequence) == (OrderStatus.CANCELLED, "first", 1)


async def test_a_place_order_redelivered_after_its_early_cancel_was_honoured_changes_nothing(
    saga: Saga,
) -> None:
    await saga.send(CancelOrder(order_id=saga.order_id))
    await saga.place()
    again = await saga.place()
    assert again.published == [] and again.scheduled == []
    order = await saga.order()
    assert (order.status, order.sequence) == (OrderStatus.CANCELLED, 1)
    async with saga.sessions() as session:
        assert await session.get(CancelTombstone, str(saga.order_id)) is None
