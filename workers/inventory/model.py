"""Inventory rules without I/O: reserve all of an order's lines against available stock, or none."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from contracts.base import OrderLine, PricedLine

__all__ = ["ORDER_CANCELLED", "Shortfall", "StockLevel", "allocate", "demand"]

ORDER_CANCELLED = "order already cancelled"
MAX_UNITS_PER_SKU = 1000  # the bound of `PricedLine.quantity`


@dataclass(frozen=True, slots=True)
class StockLevel:
    """What a reservation may take of one SKU, and at what price."""

    unit_price_cents: int
    available: int


@dataclass(frozen=True, slots=True)
class Shortfall:
    """The first SKU of an order that cannot be reserved, and why."""

    sku: str
    reason: str


def demand(lines: Iterable[OrderLine]) -> dict[str, int]:
    """Units wanted per SKU, in order of first appearance; an order may repeat a SKU."""
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    return wanted


def allocate(
    lines: Iterable[OrderLine], stock: Mapping[str, StockLevel]
) -> list[PricedLine] | Shortfall:
    """Priced lines if every SKU can be met from available stock, else the first that cannot."""
    priced: list[PricedLine] = []
    for sku, quantity in demand(lines).items():
        level = stock.get(sku)
        if level is None:
            return Shortfall(sku, f"unknown SKU {sku}")
        if quantity > MAX_UNITS_PER_SKU:
            return Shortfall(
                sku, f"too many units of {sku}: requested {quantity}, at most {MAX_UNITS_PER_SKU}"
            )
        if quantity > level.available:
            available = max(level.available, 0)
            return Shortfall(
                sku, f"insufficient stock for {sku}: requested {quantity}, available {available}"
            )
        priced.append(
            PricedLine(sku=sku, quantity=quantity, unit_price_cents=level.unit_price_cents)
        )
    return priced
