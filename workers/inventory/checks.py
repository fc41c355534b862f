"""Inventory's part of `warren verify`: reserved counters agree with reservations and stock."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings
from workers.inventory.queries import reservations, stock_levels
from workers.runtime.checks import Facts, Finding, Verification


async def collect(session: AsyncSession) -> dict[str, Any]:
    """`stock_levels`, `reservations` and `stock_held` (the reserved SKUs of each order)."""
    levels, lines = await stock_levels(session), await reservations(session)
    held = {
        order_id: Counter({sku: qty for sku, qty, status in order_lines if status == "reserved"})
        for order_id, order_lines in lines.items()
    }
    return {
        "stock_levels": levels,
        "reservations": lines,
        "stock_held": {k: v for k, v in held.items() if v},
    }


def check_stock(facts: Facts, _settings: Settings, _stuck: timedelta | None) -> list[Finding]:
    """Each SKU's reserved counter equals its active reservations and never exceeds stock."""
    active: Counter[str] = Counter()
    for order_lines in facts["reservations"].values():
        for sku, quantity, status in order_lines:
            if status == "reserved":
                active[sku] += quantity
    found = []
    for sku, (on_hand, reserved) in facts["stock_levels"].items():
        if reserved != active[sku]:
            problem = f"reserved counter {reserved}, reservations hold {active[sku]}"
            found.append(Finding(f"sku {sku}", problem))
        if reserved > on_hand:
            found.append(Finding(f"sku {sku}", f"reserved {reserved} of only {on_hand} on hand"))
    return found


verify = Verification(collect, check_stock)
