"""Three instances of every worker on PostgreSQL, some killed (SIGKILL) and others started under
load: every order reaches the outcome its card predicts once, every outbox row is published and
`warren verify` is clean. Each instance runs its own relay on its service's one database."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from contracts.base import Address, OrderLine
from contracts.orders import OrderStatus, PaymentMethod, PlaceOrder
from contracts.payments import CapturePayment
from outbox.db import create_engine, session_factory
from outbox.tables import OutboxMessage
from tests.support.harness import Process, wait_for
from tests.support.roles import consumer_of
from tests.support.system import API_SLOTS, WORKERS, System
from workers.ops.verify import verify
from workers.payments.queries import payments_by_order

pytestmark = pytest.mark.slow

INSTANCES = 3
# The card and SKU of an order script its outcome.
CARDS = {
    ("tok_visa", "MUG-7"): OrderStatus.CONFIRMED,
    ("tok_declined", "BOOK-42"): OrderStatus.CANCELLED,
    ("tok_visa", "SOLD-OUT"): OrderStatus.REJECTED,
}
BATCHES, BATCH = 8, 40


def order(token: str, sku: str) -> PlaceOrder:
    return PlaceOrder(
        order_id=uuid.uuid4(),
        customer_id="cust-replicas",
        items=[OrderLine(sku=sku, quantity=1)],
        payment=PaymentMethod(token=token),
        shipping_address=Address(
            name="Ada", line1="1 Loop Rd", city="Bristol", postal_code="BS1", country="GB"
        ),
    )


class Replicas:
    """Several worker processes per service, started and killed one by one."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.running: dict[str, list[Process]] = {name: [] for name in WORKERS}
        self.slots: dict[Process, int] = {}
        self.started = self.killed = 0

    def spawn(self, name: str) -> Process:
        # a service with an HTTP API takes a port no running instance of it holds
        taken = {self.slots[p] for p in self.running[name]}
        slot = min(set(range(API_SLOTS)) - taken)
        process = self.system.worker(name, slot)
        self.slots[process] = slot
        self.running[name].append(process)
        self.started += 1
        return process

    async def start(self, name: str) -> None:
        await self.spawn(name).ready(90)

    def kill_one(self, name: str) -> None:
        victim = self.running[name].pop(random.randrange(len(self.running[name])))
        victim.kill()
        self.killed += 1

    def stop_all(self) -> None:
        for processes in self.running.values():
            for process in processes:
                process.kill()


@pytest.fixture
async def replicas(e2e_amqp_url: str, make_database_url, tmp_path: Path) -> AsyncIterator[Replicas]:
    urls = {name: make_database_url("postgres") for name in WORKERS}
    system = System(e2e_amqp_url, urls, tmp_path, WARREN_RETRY_BASE_S="0.3")
    running = Replicas(system)
    try:
        await asyncio.gather(*(running.start(n) for n in WORKERS for _ in range(INSTANCES)))
        yield running
    finally:
        running.stop_all()


async def unpublished(system: System) -> dict[str, int]:
    """Outbox rows not yet published, per service."""
    counts = {}
    for name, url in system.database_urls.items():
        engine = create_engine(url)
        async with session_factory(engine)() as session:
            query = select(func.count()).where(col(OutboxMessage.published_at).is_(None))
            counts[name] = int((await session.exec(query)).one())
        await engine.dispose()
    return counts


async def test_three_instances_of_each_worker_killed_and_replaced_under_load_take_each_order_once(
    replicas: Replicas,
) -> None:
    system = replicas.system
    expected: dict[str, OrderStatus] = {}
    started = time.monotonic()
    for batch in range(BATCHES):
        cards = random.choices(list(CARDS), k=BATCH)
        orders = [order(token, sku) for token, sku in cards]
        expected |= {str(o.order_id): CARDS[c] for o, c in zip(orders, cards, strict=True)}
        await system.send(orders)
        if batch % 3 == 1:  # mid-load: one instance of each service vanishes, another arrives
            for name in WORKERS:
                replicas.kill_one(name)
            await asyncio.gather(*(replicas.start(name) for name in WORKERS))

    finals = await system.wait_terminal(expected, timeout=240)
    elapsed = time.monotonic() - started

    wrong = {
        o: (finals[o].status, want) for o, want in expected.items() if finals[o].status != want
    }
    assert wrong == {}, f"orders that ended otherwise than their card says: {wrong}"
    charged = Counter((await payments(system)).values())
    assert charged["captured"] == Counter(expected.values())[OrderStatus.CONFIRMED], charged
    await wait_for(
        lambda: _all_published(system), timeout=60, what="every outbox row to be published"
    )

    async def clean() -> bool:
        return not await verify(system.settings())

    await wait_for(clean, timeout=60, what="`warren verify` to be clean")
    print(
        f"\n{len(expected)} orders, {dict(Counter(s.value for s in expected.values()))}, "
        f"each once in {elapsed:.1f}s; {replicas.started} worker processes started, "
        f"{replicas.killed} killed with SIGKILL"
    )


async def payments(system: System) -> dict[str, str]:
    """The payment status of every order the payments service saw (one row per order)."""
    engine = create_engine(system.database_urls[consumer_of(CapturePayment).name])
    async with session_factory(engine)() as session:
        rows = await payments_by_order(session)
    await engine.dispose()
    return {str(order_id): summary.status for order_id, summary in rows.items()}


async def _all_published(system: System) -> bool:
    return set((await unpublished(system)).values()) == {0}
