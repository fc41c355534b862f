"""The shipping service declares itself: its queue, what it consumes and sends."""

from __future__ import annotations

from contracts.shipping import ArrangeShipment, CancelShipment, ShipmentArranged
from workers.runtime.declaration import Service

SERVICE = Service(
    name="shipping",
    group="shipments",
    description="books a carrier for a paid order, once, unless it was cancelled first",
    consumes=(ArrangeShipment, CancelShipment),
    sends=(ShipmentArranged,),
    bootstrap="workers.shipping.bootstrap:bootstrap",
    verify="workers.shipping.checks:verify",
)
