"""The conservation checker: every order's outcome must agree with stock, money and shipments.

It reads each service's own database (read-only) and reports any order whose terminal state
disagrees with the other services' records, any order stuck in flight, any stock counter that
disagrees with its reservations, and any outbox row not yet published.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from config.settings import Settings
from contracts.orders import OrderStatus
from outbox.db import create_engine, session_factory
from outbox.tables import OutboxMessage, utcnow
from workers.inventory.queries import reservations, stock_levels
from workers.orders.tables import CustomerOrder
from workers.payments.queries import PaymentSummary, payments_by_order
from workers.shipping.queries import ShipmentSummary, shipments_by_order

WORKER_SERVICES = ("orders", "inventory", "payments", "shipping")


@dataclass(frozen=True, slots=True)
class Finding:
    """One disagreement between what an order says and what the services did."""

    subject: str
    problem: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem}"


@dataclass(frozen=True, slots=True)
class Records:
    """What every service knows, keyed by order id."""

    orders: dict[str, CustomerOrder]
    held: dict[str, Counter[str]]
    payments: dict[str, PaymentSummary]
    shipments: dict[str, ShipmentSummary]


@asynccontextmanager
async def _session(settings: Settings, service: str) -> AsyncIterator[AsyncSession]:
    engine = create_engine(settings.database_url(service))
    try:
        async with session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


def check_order(order: CustomerOrder, records: Records, stuck_before: Any) -> list[Finding]:
    """The findings for one order."""
    subject = f"order {order.order_id} ({order.status})"
    held = records.held.get(order.order_id, Counter())
    payment = records.payments.get(order.order_id)
    charged = payment.charged_cents if payment else 0
    shipped = (
        shipment := records.shipments.get(order.order_id)
    ) is not None and shipment.status == "arranged"
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


def check_stock(
    levels: dict[str, tuple[int, int]], lines: dict[str, list[tuple[str, int, str]]]
) -> list[Finding]:
    """Each SKU's reserved counter equals its active reservations and never exceeds stock."""
    active: Counter[str] = Counter()
    for order_lines in lines.values():
        for sku, quantity, status in order_lines:
            if status == "reserved":
                active[sku] += quantity
    found = []
    for sku, (on_hand, reserved) in levels.items():
        if reserved != active[sku]:
            found.append(
                Finding(
                    f"sku {sku}", f"reserved counter {reserved}, reservations hold {active[sku]}"
                )
            )
        if reserved > on_hand:
            found.append(Finding(f"sku {sku}", f"reserved {reserved} of only {on_hand} on hand"))
    return found


def check_orphans(records: Records) -> list[Finding]:
    """Stock, money or shipments for orders the orders service never heard of."""
    found = []
    for kind, ids in (
        ("stock", records.held),
        ("payment", records.payments),
        ("shipment", records.shipments),
    ):
        for order_id in set(ids) - set(records.orders):
            found.append(Finding(f"order {order_id}", f"has a {kind} record but no order"))
    return found


async def pending_outbox(settings: Settings, services: Iterable[str]) -> list[Finding]:
    """Unpublished outbox rows in each service's database."""
    found = []
    for service in services:
        try:
            async with _session(settings, service) as session:
                query = select(func.count()).where(col(OutboxMessage.published_at).is_(None))
                pending = int((await session.exec(query)).one())
        except DBAPIError:
            if service in WORKER_SERVICES:
                raise
            continue  # this deployment has no gateway database (yet): nothing can be pending
        if pending:
            found.append(Finding(f"outbox of {service}", f"{pending} message(s) not yet published"))
    return found


async def gather_records(
    settings: Settings,
) -> tuple[Records, dict[str, tuple[int, int]], dict[str, list[Any]]]:
    """Read every worker's database."""
    async with _session(settings, "orders") as session:
        orders = {o.order_id: o for o in (await session.exec(select(CustomerOrder))).all()}
    async with _session(settings, "inventory") as session:
        levels, lines = await stock_levels(session), await reservations(session)
    async with _session(settings, "payments") as session:
        payments = {str(k): v for k, v in (await payments_by_order(session)).items()}
    async with _session(settings, "shipping") as session:
        shipments = {str(k): v for k, v in (await shipments_by_order(session)).items()}
    held = {
        order_id: Counter({sku: qty for sku, qty, status in order_lines if status == "reserved"})
        for order_id, order_lines in lines.items()
    }
    held = {k: v for k, v in held.items() if v}
    return Records(orders, held, payments, shipments), levels, lines


async def verify(settings: Settings, *, stuck_after: timedelta | None = None) -> list[Finding]:
    """Every finding across the worker databases; an empty list means all is conserved."""
    stuck_after = stuck_after or timedelta(
        seconds=max(
            settings.reserve_timeout_s, settings.payment_timeout_s, settings.shipment_timeout_s
        )
        + 60
    )
    records, levels, lines = await gather_records(settings)
    stuck_before = utcnow() - stuck_after
    found = [
        f for order in records.orders.values() for f in check_order(order, records, stuck_before)
    ]
    found += check_stock(levels, lines) + check_orphans(records)
    return found + await pending_outbox(settings, (*WORKER_SERVICES, "gateway"))
