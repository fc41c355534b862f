"""The orders service's part of `warren verify`: every order agrees with stock, money, shipments.

It reads the facts the other services report (`stock_held`, `charges`, `shipments`, and the
card provider's `provider_ledger` when there is one), never their tables: an order's terminal
state must match what was held, charged and shipped for it.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings
from contracts.orders import OrderStatus
from outbox.tables import utcnow
from workers.orders.reconcile import reconcile
from workers.orders.settings import OrdersSettings
from workers.orders.tables import CustomerOrder
from workers.runtime.checks import Facts, Finding, Verification

# What the other services report about orders, by fact name, and what to call a record of it.
RELATED_FACTS = {"stock_held": "stock", "charges": "payment", "shipments": "shipment"}


async def collect(session: AsyncSession) -> dict[str, Any]:
    """`orders`: every order, by id."""
    return {"orders": {o.order_id: o for o in (await session.exec(select(CustomerOrder))).all()}}


def check_order(order: CustomerOrder, facts: Facts, stuck_before: datetime) -> list[Finding]:
    """The findings for one order."""
    subject = f"order {order.order_id} ({order.status})"
    held = facts.get("stock_held", {}).get(order.order_id, Counter())
    payment = facts.get("charges", {}).get(order.order_id)
    charged = payment.charged_cents if payment else 0
    shipment = facts.get("shipments", {}).get(order.order_id)
    shipped = shipment is not None and shipment.status == "arranged"
    found = []
    if order.status == OrderStatus.CONFIRMED:
        wanted = Counter({i["sku"]: 0 for i in order.items})
        for item in order.items:
            wanted[item["sku"]] += item["quantity"]
        if held != wanted:
            found.append(Finding(subject, f"holds stock {dict(held)}, ordered {dict(wanted)}"))
        if charged != order.total_cents:
            found.append(Finding(subject, f"charged {charged} cents, total is {order.total_cents}"))
        if not shipped:
            found.append(Finding(subject, "has no arranged shipment"))
    elif order.status.is_terminal:
        if held:
            found.append(Finding(subject, f"still holds stock {dict(held)}"))
        if charged:
            found.append(Finding(subject, f"still has {charged} cents charged"))
        if shipped:
            found.append(Finding(subject, "still has an arranged shipment"))
    elif order.updated_at < stuck_before:
        found.append(
            Finding(subject, f"stuck since {order.updated_at.isoformat(timespec='seconds')}")
        )
    return found


def check_orphans(facts: Facts) -> list[Finding]:
    """Stock, money or shipments for orders the orders service never heard of."""
    orders = facts["orders"]
    return [
        Finding(f"order {order_id}", f"has a {kind} record but no order")
        for fact, kind in RELATED_FACTS.items()
        for order_id in sorted(set(facts.get(fact, {})) - set(orders))
    ]


def check(facts: Facts, _settings: Settings, stuck_after: timedelta | None) -> list[Finding]:
    """Every order against the other services' facts, and records no order explains."""
    stuck_after = stuck_after or OrdersSettings().longest_step + timedelta(seconds=60)
    stuck_before = utcnow() - stuck_after
    found = [
        f for order in facts["orders"].values() for f in check_order(order, facts, stuck_before)
    ]
    return found + check_orphans(facts) + reconcile(facts)


verify = Verification(collect, check)
