"""Contracts owned by the inventory service."""

from __future__ import annotations

from contracts.base import Command, Event, Lines, OrderId, PricedLines, ShortText, Sku


class ReserveStock(Command):
    """Reserve every line of an order, all or nothing."""

    NAME = "inventory.ReserveStock"
    VERSION = 1

    order_id: OrderId
    items: Lines


class StockReserved(Event):
    """Every line is reserved; the lines carry the unit prices."""

    NAME = "inventory.StockReserved"
    VERSION = 1

    order_id: OrderId
    lines: PricedLines


class StockRejected(Event):
    """The order cannot be reserved; `sku` names the line that failed."""

    NAME = "inventory.StockRejected"
    VERSION = 1

    order_id: OrderId
    sku: Sku | None = None
    reason: ShortText


class ReleaseStock(Command):
    """Give back whatever is reserved for an order (compensation); a no-op if nothing is."""

    NAME = "inventory.ReleaseStock"
    VERSION = 1

    order_id: OrderId
