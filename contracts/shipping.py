"""Contracts owned by the shipping service."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from contracts.base import Address, Command, Event, Lines, OrderId


class ArrangeShipment(Command):
    """Book a carrier for a paid order."""

    NAME = "shipping.ArrangeShipment"
    VERSION = 1

    order_id: OrderId
    items: Lines
    shipping_address: Address


class ShipmentArranged(Event):
    NAME = "shipping.ShipmentArranged"
    VERSION = 1

    order_id: OrderId
    carrier: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    tracking_number: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class CancelShipment(Command):
    """Cancel whatever shipment exists for an order (compensation); later arrangements refuse it."""

    NAME = "shipping.CancelShipment"
    VERSION = 1

    order_id: OrderId
