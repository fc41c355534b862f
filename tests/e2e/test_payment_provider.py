"""The saga against the card provider service over HTTP: kills, cancels and lost answers race.

Every charge in the provider's ledger must back exactly one confirmed order or be refunded,
and every cancel the gateway accepted must end cancelled, refunded and restocked.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from config.settings import DEV_API_KEY
from contracts.orders import CancelOrder, OrderStatus
from tests.conftest import Backend, MakeDatabaseUrl
from tests.e2e.test_saga import PAYMENTS, PLENTY, clean, order, payments, stock
from tests.support.harness import free_port, wait_for
from tests.support.orders import order_body
from tests.support.system import WORKERS, System

KILLS = 10


@pytest.fixture
async def system(
    e2e_amqp_url: str, backend: Backend, make_database_url: MakeDatabaseUrl, tmp_path: Path
) -> AsyncIterator[System]:
    urls = {service: make_database_url(backend) for service in (*WORKERS, "gateway")}
    running = System(e2e_amqp_url, urls, tmp_path, WARREN_RETRY_BASE_S="0.3")
    yield running
    running.stop_all()


async def ledger(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url) as client:
        entries: list[dict[str, Any]] = (await client.get("/charges")).json()
        return entries


async def kill_at_random(system: System, stop: asyncio.Event, kills: Counter[str]) -> None:
    """Every few seconds, SIGKILL a random running worker instance and start it again.

    Up to `KILLS` times, until told to stop; the new instance is not waited for.
    """
    chance = random.Random(7)
    while not stop.is_set() and sum(kills.values()) < KILLS:
        await asyncio.sleep(chance.uniform(2.0, 4.0))
        running = [
            name
            for name, process in system.processes.items()
            if name.partition("#")[0] in WORKERS and process.child.ready
        ]
        if not running:
            continue
        victim = chance.choice(sorted(running))
        system.restart(victim)
        kills[victim.partition("#")[0]] += 1


async def _restocked(system: System, expected: dict[str, int]) -> bool:
    return await stock(system) == expected


@pytest.mark.parametrize("backend", ["postgres"])
async def test_two_of_every_worker_killed_at_random_every_accepted_cancel_is_cancelled_and_undone(
    system: System, make_database_url: MakeDatabaseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await system.start_provider(make_database_url("postgres"), latency_ms="30")
    monkeypatch.setenv("WARREN_PAYMENT_PROVIDER_URL", url)  # `warren verify` reads its ledger
    await system.start(copies=2)
    port = free_port()
    await system.start_gateway(port)
    before = await stock(system)
    stop, kills = asyncio.Event(), Counter[str]()
    killer = asyncio.create_task(kill_at_random(system, stop, kills))

    placed: dict[str, tuple[str, int]] = {}
    cancelled: set[str] = set()
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        for number in range(40):
            sku, quantity = random.choice(PLENTY), random.randint(1, 3)
            accepted = await client.post("/orders", json=order_body("tok_visa", sku, quantity))
            assert accepted.status_code == 202, accepted.text
            order_id = accepted.json()["order_id"]
            placed[order_id] = (sku, quantity)
            if number % 2 == 0:
                cancel = await client.post(f"/orders/{order_id}/cancel")
                if cancel.status_code == 202:
                    cancelled.add(order_id)
            await asyncio.sleep(0.4)  # a steady flow, so that the kills land while it runs

    done = await system.wait_terminal(placed, timeout=150)
    stop.set()
    await killer
    await asyncio.gather(*(p.ready(60) for p in system.processes.values()))

    statuses = Counter(o.status for o in done.values())
    print(
        f"accepted {len(placed)}, cancels accepted {len(cancelled)}, {dict(statuses)}, "
        f"kills {dict(kills)}"
    )
    assert len(cancelled) == 20 and sum(kills.values()) >= 5
    assert {done[o].status for o in cancelled} == {OrderStatus.CANCELLED}
    recorded = await payments(system)
    assert {recorded.get(o, "none") for o in cancelled} <= {"refunded", "voided", "none"}
    sold = Counter[str]()
    for order_id, (sku, quantity) in placed.items():
        if done[order_id].status == OrderStatus.CONFIRMED:
            sold[sku] += quantity
    expected = {sku: level - sold[sku] for sku, level in before.items()}
    await wait_for(lambda: _restocked(system, expected), timeout=60, what="cancelled stock back")
    await wait_for(lambda: clean(system), timeout=60, what="`warren verify` to be clean")
    charged = [e for e in await ledger(url) if e["status"] == "charged"]
    assert {e["order_id"] for e in charged} == {
        o for o in placed if done[o].status == OrderStatus.CONFIRMED
    }


async def test_a_provider_losing_a_fifth_of_its_answers_while_cancels_race_captures_charges_once(
    system: System,
    backend: Backend,
    make_database_url: MakeDatabaseUrl,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = await system.start_provider(
        make_database_url(backend), lose_answer_rate="0.2", latency_ms="300", seed="13"
    )
    monkeypatch.setenv("WARREN_PAYMENT_PROVIDER_URL", url)
    await system.start(*(name for name in WORKERS if name != PAYMENTS))
    await system.start(PAYMENTS, copies=2)  # a refund may run beside its capture
    orders = [order() for _ in range(40)]
    await system.send(orders)
    # half are cancelled while their capture is in flight (or just done)
    sent = await cancel_while_paying({str(o.order_id) for o in orders[::2]}, system)

    done = await system.wait_terminal([o.order_id for o in orders], timeout=120)
    await wait_for(lambda: clean(system), timeout=60, what="`warren verify` to be clean")

    entries = await ledger(url)
    by_order = Counter(e["order_id"] for e in entries)
    statuses = Counter(o.status for o in done.values())
    at_provider = Counter(e["status"] for e in entries)
    lost = sum(e["answer_lost"] for e in entries)
    print(
        f"orders {dict(statuses)}, cancels sent mid-payment {len(sent)}, "
        f"provider ledger {dict(at_provider)}, answers lost {lost}"
    )
    assert max(by_order.values()) == 1  # one key per order: never a second charge
    confirmed = {k for k, o in done.items() if o.status == OrderStatus.CONFIRMED}
    assert {e["order_id"] for e in entries if e["status"] == "charged"} == confirmed
    assert {done[o].status for o in sent} == {OrderStatus.CANCELLED}
    assert lost > 0 and at_provider["refunded"] + at_provider["voided"] >= 5


async def cancel_while_paying(wanted: set[str], system: System) -> set[str]:
    """Send each wanted order's cancel as soon as the saga has asked for its payment."""
    sent: set[str] = set()

    async def all_sent_or_past() -> bool:
        known = await system.orders()
        due = {
            o
            for o in wanted - sent
            if o in known and known[o].status in {OrderStatus.STOCK_RESERVED, OrderStatus.PAID}
        }
        await system.send([CancelOrder(order_id=UUID(o)) for o in due])
        sent.update(due)
        return all(o in sent or (o in known and known[o].status.is_terminal) for o in wanted)

    await wait_for(all_sent_or_past, timeout=90, what="every cancel sent mid-payment")
    return sent
