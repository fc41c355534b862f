"""A database outage while orders flow: the workers pause, nothing is dead-lettered or retried.

PostgreSQL is not stopped (other tests share the server): every service reaches it through a TCP
proxy the test cuts. SQLite: another process holds the write lock of every service's file.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from contracts.base import Address, OrderLine
from contracts.orders import OrderStatus, PaymentMethod, PlaceOrder
from contracts.topology import dead_letter_queue
from tests.support.harness import wait_for
from tests.support.proxy import TcpProxy
from tests.support.system import WORKERS, System
from workers.ops.management import Management
from workers.ops.status import snapshot
from workers.ops.verify import verify
from workers.runtime.discovery import subscriptions

pytestmark = pytest.mark.slow
# What each card leads to when nothing times out.
PREDICTED = {"tok_visa": OrderStatus.CONFIRMED, "tok_declined": OrderStatus.CANCELLED}
ORDERS_EACH_SIDE = 6  # placed before the outage, and as many during it


def order(token: str) -> PlaceOrder:
    return PlaceOrder(
        order_id=uuid.uuid4(),
        customer_id="cust-outage",
        items=[OrderLine(sku="MUG-7", quantity=1)],
        payment=PaymentMethod(token=token),
        shipping_address=Address(
            name="Ada", line1="1 Loop Rd", city="Bristol", postal_code="BS1", country="GB"
        ),
    )


def some_orders() -> list[PlaceOrder]:
    return [order("tok_declined" if i % 3 == 0 else "tok_visa") for i in range(ORDERS_EACH_SIDE)]


Outage = Callable[[], Awaitable[Callable[[], Awaitable[None]]]]  # starts it; returns its end


def _through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()


@pytest.fixture
async def outage_system(
    e2e_amqp_url: str, backend: str, make_database_url, tmp_path: Path
) -> AsyncIterator[tuple[System, Outage]]:
    """The four workers, and a way to take all their databases away."""
    urls = {service: make_database_url(backend) for service in WORKERS}
    proxy: TcpProxy | None = None
    if backend == "postgres":
        target = urlsplit(next(iter(urls.values())))
        proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
        await proxy.start()
        urls = {service: _through(url, proxy) for service, url in urls.items()}
    # short delayed retries: without the pause, the outage would spend every retry budget
    system = System(e2e_amqp_url, urls, tmp_path, WARREN_RETRY_BASE_S="0.3")

    async def cut_proxy() -> Callable[[], Awaitable[None]]:
        assert proxy is not None
        await proxy.cut()
        return proxy.start

    async def lock_files() -> Callable[[], Awaitable[None]]:
        files = [urlsplit(url).path.removeprefix("/") for url in urls.values()]
        holder = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _LOCKER, *files, stdout=asyncio.subprocess.PIPE
        )
        assert holder.stdout is not None
        assert (await holder.stdout.readline()).strip() == b"locked"

        async def release() -> None:
            holder.terminate()
            await holder.wait()

        return release

    yield system, (cut_proxy if proxy is not None else lock_files)
    system.stop_all()
    if proxy is not None:
        await proxy.cut()


# Another process holding the write lock of each file until it is terminated.
_LOCKER = """
import sqlite3, sys, time
held = [sqlite3.connect(path, isolation_level=None) for path in sys.argv[1:]]
for connection in held:
    connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(3600)
"""


async def _paused(system: System) -> bool:
    return any(row.state == "paused" for row in await snapshot(system.settings()))


async def _dead_letters(system: System) -> dict[str, int]:
    async with Management(system.settings()) as api:
        queues = {q["name"]: q for q in await api.queues()}
    dlqs = [dead_letter_queue(s.queue) for s in subscriptions()]
    return {dlq: int(queues.get(dlq, {}).get("messages") or 0) for dlq in dlqs}


async def _redelivered(system: System) -> dict[str, int]:
    """Messages each work queue delivered again (each one moved its `x-delivery-count`)."""
    async with Management(system.settings()) as api:
        queues = {q["name"]: q for q in await api.queues()}
    stats = {s.queue: queues.get(s.queue, {}).get("message_stats") or {} for s in subscriptions()}
    return {queue: int(stat.get("redeliver") or 0) for queue, stat in stats.items()}


def _log_lines(system: System, text: str) -> int:
    return sum(text in line for p in system.processes_seen.values() for line in p.lines)


@pytest.mark.parametrize("seconds", [60, 20])
async def test_a_database_outage_pauses_the_workers_and_costs_no_message_anything(
    outage_system: tuple[System, Outage], backend: str, seconds: int
) -> None:
    system, start_outage = outage_system
    await system.start()
    before, during = some_orders(), some_orders()

    # given orders in flight, when every database goes away for `seconds`
    await system.send(before)
    end_outage = await start_outage()
    started = time.monotonic()
    await system.send(during)
    # SQLite waits for a lock up to its busy timeout (30 s) before the consumer sees an outage
    paused_seen = await _watch_paused(system, seconds - 1)
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))  # the outage goes on
    await end_outage()

    # then every order ends, nothing was dead-lettered and no delayed retry was spent
    placed = before + during
    done = await system.wait_terminal([o.order_id for o in placed], timeout=180)
    await wait_for(lambda: _clean(system), timeout=30, what="`warren verify` to be clean")
    outcomes = Counter(o.status.value for o in done.values())
    dead = await _dead_letters(system)
    pauses = _log_lines(system, "paused consuming")
    resumes = _log_lines(system, "resumed consuming")
    retries = {name: await p.metric("warren_retries_total") for name, p in system.processes.items()}
    # each redelivery would have moved its message's x-delivery-count
    redelivered = await _redelivered(system)
    print(
        f"{backend} outage {seconds}s: {len(placed)} orders, {dict(outcomes)}, "
        f"dead-lettered {sum(dead.values())}, pauses {pauses}, resumes {resumes}, "
        f"status showed paused: {paused_seen}, retries {sum(retries.values()):.0f}, "
        f"redelivered {sum(redelivered.values())}"
    )
    assert set(dead.values()) == {0}, dead
    assert _log_lines(system, "dead-lettered") == 0
    assert _log_lines(system, "retrying in") == 0, "the outage spent a delayed retry"
    assert set(retries.values()) == {0}, f"retries scheduled: {retries}"
    assert set(redelivered.values()) == {0}, f"the outage gave deliveries back: {redelivered}"
    if seconds > 30 or backend == "postgres":
        assert paused_seen, "`warren status` never showed a paused worker"
        assert pauses > 0
        assert resumes > 0
    if seconds < 30:  # shorter than every step timeout: each card decides its order
        assert {str(o.order_id): done[str(o.order_id)].status for o in placed} == {
            str(o.order_id): PREDICTED[o.payment.token] for o in placed
        }


async def _watch_paused(system: System, within: float) -> bool:
    """Whether `warren status` shows a paused worker within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await _paused(system):
            return True
        await asyncio.sleep(0.5)
    return False


async def _clean(system: System) -> bool:
    return not await verify(system.settings())
