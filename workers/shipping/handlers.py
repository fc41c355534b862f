"""Arrange and cancel shipments, each at most once per order: the row is the idempotency record."""

from __future__ import annotations

from loguru import logger
from sqlalchemy.exc import IntegrityError

from contracts.envelope import Envelope
from contracts.shipping import ArrangeShipment, CancelShipment, ShipmentArranged
from outbox.statements import KeyedRows
from outbox.tables import utcnow
from outbox.unit_of_work import UnitOfWork
from workers.runtime.consumer import Handler
from workers.runtime.errors import TransientError
from workers.shipping.model import ShipmentStatus, choose_carrier
from workers.shipping.tables import Shipment

SHIPMENTS = KeyedRows(Shipment)  # read and written on the transaction's cursor, not the ORM


def _arranged(command: ArrangeShipment) -> Shipment:
    """A new arrangement with the carrier and tracking number the model picks for the order."""
    country = command.shipping_address.country
    carrier = choose_carrier(country)
    return Shipment(
        order_id=command.order_id,
        status=ShipmentStatus.ARRANGED,
        carrier=carrier.name,
        tracking_number=carrier.tracking_number(command.order_id),
        country=country,
        arranged_at=utcnow(),
    )


async def _insert(uow: UnitOfWork, row: Shipment) -> None:
    try:
        await SHIPMENTS.add(uow.session, row)
    except IntegrityError as exc:  # a concurrent delivery for the same order committed first
        raise TransientError(f"shipment of order {row.order_id} written concurrently") from exc


async def arrange_shipment(envelope: Envelope[ArrangeShipment], uow: UnitOfWork) -> None:
    """Book a carrier once; a repeat gets the same booking, a cancelled order gets none."""
    command = envelope.message
    row = await SHIPMENTS.get(uow.session, command.order_id)
    if row is None:
        row = _arranged(command)
        await _insert(uow, row)
    if row.status == ShipmentStatus.CANCELLED:
        logger.warning("order {} was cancelled before shipping; nothing arranged", row.order_id)
        return
    assert row.carrier is not None and row.tracking_number is not None
    uow.publish(
        envelope.caused(
            ShipmentArranged(
                order_id=row.order_id, carrier=row.carrier, tracking_number=row.tracking_number
            )
        )
    )


async def cancel_shipment(envelope: Envelope[CancelShipment], uow: UnitOfWork) -> None:
    """Cancel the order's shipment; with none yet, leave a tombstone that refuses a later one."""
    order_id = envelope.message.order_id
    row = await SHIPMENTS.get(uow.session, order_id)
    if row is None:
        tombstone = Shipment(
            order_id=order_id, status=ShipmentStatus.CANCELLED, cancelled_at=utcnow()
        )
        await _insert(uow, tombstone)
        logger.info("shipment of order {} cancelled before it was arranged", order_id)
    elif row.status == ShipmentStatus.ARRANGED:
        row.status = ShipmentStatus.CANCELLED
        row.cancelled_at = utcnow()
        await SHIPMENTS.update(uow.session, row, "status", "cancelled_at")
        logger.info("shipment {} of order {} cancelled", row.tracking_number, order_id)


HANDLERS: dict[str, Handler] = {
    ArrangeShipment.NAME: arrange_shipment,
    CancelShipment.NAME: cancel_shipment,
}
