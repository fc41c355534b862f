"""Shipping through the real bootstrap and handlers, on SQLite, with a recording outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from config.settings import Environment, Settings
from contracts.base import Address, Message, OrderLine
from contracts.envelope import Envelope
from contracts.shipping import ArrangeShipment, CancelShipment, ShipmentArranged
from outbox.db import SessionFactory, create_engine, create_tables, session_factory
from tests.support.fakes import RecordingUnitOfWork
from workers.runtime.service import ServiceSpec
from workers.shipping.bootstrap import bootstrap
from workers.shipping.model import choose_carrier
from workers.shipping.queries import shipments_by_order
from workers.shipping.tables import Shipment


@dataclass
class ShippingWorker:
    spec: ServiceSpec
    sessions: SessionFactory
    sent: list[Envelope[Any]]  # messages of committed units of work only

    async def deliver(self, message: Message) -> None:
        """Handle `message` in a fresh envelope (a new message id), as the runtime would."""
        async with RecordingUnitOfWork(self.sessions) as uow:
            await self.spec.handlers[message.NAME](Envelope(message), uow)
            await uow.commit()
            self.sent.extend(uow.published)

    async def shipment(self, order_id: UUID) -> Shipment | None:
        async with self.sessions() as session:
            return await session.get(Shipment, order_id)

    def arranged(self) -> list[ShipmentArranged]:
        return [e.message for e in self.sent if isinstance(e.message, ShipmentArranged)]


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[ShippingWorker]:
    spec = bootstrap(Settings(env=Environment.TEST))
    engine = create_engine(f"sqlite+inline:///{tmp_path / 'shipping.db'}")
    await create_tables(engine, spec.tables)
    yield ShippingWorker(spec, session_factory(engine), [])
    await engine.dispose()


def arrange(order_id: UUID, country: str = "DE") -> ArrangeShipment:
    address = Address(
        name="Ada Lovelace",
        line1="1 Analytical Way",
        city="Berlin",
        postal_code="10115",
        country=country,
    )
    return ArrangeShipment(
        order_id=order_id, items=[OrderLine(sku="BOOK-1", quantity=2)], shipping_address=address
    )


def test_bootstrap_handles_every_message_of_the_shipments_queue() -> None:
    spec = bootstrap(Settings(env=Environment.TEST))

    assert spec.name == "shipping"
    assert spec.subscription.queue == "shipping.shipments"
    assert set(spec.handlers) == set(spec.subscription.messages)


def test_the_carrier_depends_on_the_country_and_the_tracking_number_on_the_order() -> None:
    first, second = uuid4(), uuid4()

    assert choose_carrier("GB").name == "Royal Mail"
    assert choose_carrier("US").name == "USPS"
    assert choose_carrier("JP").name == "DHL"
    royal_mail = choose_carrier("GB")
    assert royal_mail.tracking_number(first) == royal_mail.tracking_number(first)
    assert royal_mail.tracking_number(first) != royal_mail.tracking_number(second)
    assert royal_mail.tracking_number(first).startswith("RM")
    assert royal_mail.tracking_number(first).endswith("GB")


async def test_arranging_twice_books_once_with_the_same_tracking_number(
    worker: ShippingWorker,
) -> None:
    order_id = uuid4()

    await worker.deliver(arrange(order_id, country="GB"))
    await worker.deliver(arrange(order_id, country="GB"))

    row = await worker.shipment(order_id)
    assert row is not None and row.status == "arranged" and row.carrier == "Royal Mail"
    replies = worker.arranged()
    assert len(replies) == 2
    assert {(r.carrier, r.tracking_number) for r in replies} == {(row.carrier, row.tracking_number)}


async def test_a_cancel_before_arrangement_leaves_a_tombstone_that_refuses_it(
    worker: ShippingWorker,
) -> None:
    order_id = uuid4()

    await worker.deliver(CancelShipment(order_id=order_id))
    await worker.deliver(arrange(order_id))

    row = await worker.shipment(order_id)
    assert row is not None and row.status == "cancelled"
    assert row.carrier is None and row.tracking_number is None
    assert worker.arranged() == []


async def test_cancelling_an_arranged_shipment_twice_cancels_it_once(
    worker: ShippingWorker,
) -> None:
    order_id = uuid4()
    await worker.deliver(arrange(order_id))
    booked = await worker.shipment(order_id)

    await worker.deliver(CancelShipment(order_id=order_id))
    await worker.deliver(CancelShipment(order_id=order_id))
    await worker.deliver(arrange(order_id))

    row = await worker.shipment(order_id)
    assert booked is not None and row is not None
    assert row.status == "cancelled" and row.cancelled_at is not None
    assert row.tracking_number == booked.tracking_number
    assert len(worker.arranged()) == 1


async def test_the_shipments_view_lists_every_order(worker: ShippingWorker) -> None:
    shipped, cancelled = uuid4(), uuid4()
    await worker.deliver(arrange(shipped, country="US"))
    await worker.deliver(CancelShipment(order_id=cancelled))

    async with worker.sessions() as session:
        view = await shipments_by_order(session)

    assert view[shipped].status == "arranged" and view[shipped].carrier == "USPS"
    assert view[cancelled] == ("cancelled", None, None)
