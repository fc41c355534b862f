"""Carts' part of `warren verify`: every checked-out cart has exactly one order, with its lines.

Carts report `checked_out_carts`; the check reads the saga's fact of every order, which is
named after the context of the orders' contracts.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings
from contracts.orders import PlaceOrder
from contracts.topology import context_of
from workers.carts.model import CartStatus
from workers.carts.tables import Cart
from workers.runtime.checks import Facts, Finding, Verification

ORDERS_FACT = context_of(PlaceOrder.NAME)


async def collect(session: AsyncSession) -> dict[str, Any]:
    """`checked_out_carts`: cart id -> (order id, user id, the lines it ordered)."""
    carts = (
        await session.exec(select(Cart).where(col(Cart.status) == CartStatus.CHECKED_OUT))
    ).all()
    return {
        "checked_out_carts": {
            c.cart_id: (
                c.order_id,
                c.user_id,
                {line["sku"]: line["quantity"] for line in c.ordered or []},
            )
            for c in carts
        }
    }


def _lines(items: list[dict[str, Any]]) -> dict[str, int]:
    counted: Counter[str] = Counter()
    for item in items:
        counted[item["sku"]] += item["quantity"]
    return dict(counted)


def check(facts: Facts, _settings: Settings, _stuck_after: timedelta | None) -> list[Finding]:
    """Each checked-out cart against its order; no order is made by two carts."""
    orders = facts.get(ORDERS_FACT, {})
    found = []
    by_order = Counter(order_id for order_id, _, _ in facts["checked_out_carts"].values())
    for cart_id, (order_id, user_id, lines) in sorted(facts["checked_out_carts"].items()):
        subject = f"cart {cart_id}"
        order = orders.get(order_id)
        if order is None:
            found.append(Finding(subject, f"checked out, but order {order_id} does not exist"))
            continue
        if by_order[order_id] > 1:
            found.append(Finding(subject, f"shares order {order_id} with another cart"))
        if _lines(order.items) != lines:
            found.append(
                Finding(subject, f"ordered {lines}, order {order_id} has {_lines(order.items)}")
            )
        if order.customer_id != user_id:
            found.append(Finding(subject, f"order {order_id} belongs to {order.customer_id}"))
    return found


verify = Verification(collect, check)
