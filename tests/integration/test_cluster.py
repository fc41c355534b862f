"""A three-node RabbitMQ cluster loses a node under load: nothing lost, nothing twice, no DLQ.

Every service (four workers and the HTTP gateway) runs against a private cluster, with every
node's URL in WARREN_BROKER_URL; orders flow over HTTP while one node is stopped and later
started again. First the node leading the saga's queue, then the node the services are on.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.settings import DEV_API_KEY, Environment, Settings
from contracts.orders import PlaceOrder
from outbox.amqp import connect
from tests.support.cluster import Node, RabbitCluster
from tests.support.harness import free_port, wait_for
from tests.support.orders import order_body
from tests.support.roles import consumer_of
from tests.support.system import WORKERS, System
from workers.ops.management import Management
from workers.ops.verify import verify
from workers.runtime.topology import apply_plan, build_plan

pytestmark = pytest.mark.slow

SAGA_QUEUE = consumer_of(PlaceOrder).queue
# The card (and SKU) of an order script its outcome.
CARDS: dict[str, tuple[dict[str, Any], str]] = {
    "visa": (order_body("tok_visa", "MUG-7"), "CONFIRMED"),
    "declined": (order_body("tok_declined", "BOOK-42"), "CANCELLED"),
    "sold-out": (order_body("tok_visa", "SOLD-OUT"), "REJECTED"),
}
ORDERS_PER_S = 12
WAIT_S = 120.0


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RabbitCluster]:
    """One private three-node cluster for the module, removed afterwards."""
    rabbit = RabbitCluster(tmp_path_factory.mktemp("rabbit"))
    try:
        started = time.monotonic()
        await rabbit.start()
        print(f"\ncluster of {len(rabbit.nodes)} nodes up in {time.monotonic() - started:.1f}s")
        yield rabbit
    finally:
        await rabbit.remove()


def cluster_settings(rabbit: RabbitCluster, vhost: str, via: Node) -> Settings:
    """Settings naming every node, with the management API of `via`."""
    return Settings(
        _env_file=None,
        env=Environment.TEST,
        broker_url=",".join(rabbit.amqp_urls(vhost)),
        management_url=via.management_url,
        management_user="guest",
        management_password="guest",
    )


@dataclass
class Load:
    """Places orders over HTTP at a steady rate until told to stop; remembers what it placed."""

    url: str
    placed: dict[str, str] = field(default_factory=dict)  # order id -> expected outcome
    slowest_post_s: float = 0.0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30) as client:
            for card in itertools.cycle(CARDS):
                if self.stop.is_set():
                    return
                body, outcome = CARDS[card]
                started = time.monotonic()
                response = await client.post("/orders", json=body)
                elapsed = time.monotonic() - started
                assert response.status_code == 202, response.text
                self.placed[response.json()["order_id"]] = outcome
                self.slowest_post_s = max(self.slowest_post_s, elapsed)
                await asyncio.sleep(max(0.0, 1 / ORDERS_PER_S - elapsed))  # the pace, not a wait


class Scene:
    """The cluster, every service on it in a fresh vhost, and the orders placed."""

    def __init__(self, rabbit: RabbitCluster, system: System, vhost: str, port: int) -> None:
        self.rabbit, self.system, self.vhost = rabbit, system, vhost
        self.load = Load(f"http://127.0.0.1:{port}")

    def management(self, avoid: Node | None = None) -> Management:
        via = next(n for n in self.rabbit.running() if n is not avoid)
        return Management(cluster_settings(self.rabbit, self.vhost, via), self.vhost)

    async def terminal(self) -> set[str]:
        orders = await self.system.orders()
        return {o for o, row in orders.items() if row.status.is_terminal}

    async def settle_after(self, placed_before: int, count: int) -> None:
        """Wait until `count` orders placed after the first `placed_before` are terminal."""

        async def progressed() -> bool:
            later = list(self.load.placed)[placed_before:]
            return len(later) >= count and set(later[:count]) <= await self.terminal()

        await wait_for(progressed, timeout=WAIT_S, what=f"{count} more orders to finish")


@pytest.fixture
async def scene(
    cluster: RabbitCluster, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Scene]:
    """Every service on the cluster, its queues declared through the last node."""
    first = cluster.running()[0]
    vhost = f"warren-cluster-{secrets.token_hex(3)}"
    settings = cluster_settings(cluster, vhost, first)
    async with Management(settings) as api:
        await api.create_vhost(vhost, f"Warren tests: {request.node.name}", {"guest"})
    # A quorum queue's leader starts on the node its declaring client is on: the last node here,
    # so that the services (on the first node that answers) and the saga's leader are apart.
    declaring = await connect(cluster.nodes[-1].amqp_url(vhost), "tests-topology")
    await apply_plan(declaring, build_plan(settings))
    await declaring.close()
    databases = {s: f"sqlite+inline:///{tmp_path / s}.db" for s in (*WORKERS, "gateway")}
    system = System(
        settings.amqp_url(),
        databases,
        tmp_path,
        first.management_url,
        WARREN_MANAGEMENT_URL=first.management_url,
        WARREN_RETRY_BASE_S="0.3",
        WARREN_RATE_LIMIT_PER_S="1000",  # the checks read every order back at once
        WARREN_RATE_LIMIT_BURST="1000",
    )
    port = free_port()
    try:
        await system.start()
        await system.start_gateway(port)
        yield Scene(cluster, system, vhost, port)
    finally:
        system.stop_all()


async def outage(scene: Scene, node: Node) -> float:
    """Stop `node` under load and start it again later; the seconds from the node being down
    to the first order placed after that being finished."""
    load_task = asyncio.create_task(scene.load.run())
    try:
        await scene.settle_after(0, 2 * ORDERS_PER_S)
        before = len(scene.load.placed)
        await scene.rabbit.stop_node(node)
        stopped_at = time.monotonic()
        await scene.settle_after(len(scene.load.placed), 1)
        stall = time.monotonic() - stopped_at
        await scene.settle_after(before, 3 * ORDERS_PER_S)  # work goes on without the node
        await scene.rabbit.start_node(node)
        async with scene.management() as api:
            await wait_for(
                lambda: _replica_online(api, node), timeout=WAIT_S, what="the node's replica"
            )
        await scene.settle_after(len(scene.load.placed), 2 * ORDERS_PER_S)
    finally:
        scene.load.stop.set()
        await load_task
    return stall


async def _replica_online(api: Management, node: Node) -> bool:
    queue = await api.queue(SAGA_QUEUE)
    return queue is not None and node.name in (queue.get("online") or [])


async def assert_every_order_once_and_clean(
    scene: Scene, stall_s: float
) -> dict[str, tuple[float, float]]:
    """Check every order and the broker; each process's broker pause (seconds, reconnects)."""
    placed = scene.load.placed
    finals = await scene.system.wait_terminal(placed, timeout=WAIT_S)
    wrong = {
        o: (finals[o].status.value, want) for o, want in placed.items() if finals[o].status != want
    }
    assert wrong == {}, f"orders that ended otherwise than their card says: {wrong}"
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
    async with httpx.AsyncClient(base_url=scene.load.url, headers=headers, timeout=30) as client:
        for order_id in placed:
            history = [
                h["status"] for h in (await client.get(f"/orders/{order_id}")).json()["history"]
            ]
            assert len(history) == len(set(history)), (
                f"{order_id} went through a status twice: {history}"
            )
    async with scene.management() as api:
        queues = await api.queues()
    dead = {q["name"]: q.get("messages", 0) for q in queues if q["name"].endswith(".dlq")}
    assert dead and set(dead.values()) == {0}, f"dead letters: {dead}"

    async def clean() -> bool:
        return not await verify(scene.system.settings())

    await wait_for(clean, timeout=60, what="`warren verify` to be clean")
    pauses = {name: await _broker_pause(scene, name) for name in scene.system.processes}
    # docs/scaling.md's E: messages written into quorum queues per order, delay hops included
    enqueued = sum((q.get("message_stats") or {}).get("publish", 0) for q in queues)
    print(
        f"\n{len(placed)} orders placed over HTTP: {dict(Counter(placed.values()))}, each once;"
        f" the first order placed after the stop finished in {stall_s:.1f}s;"
        f" slowest POST {scene.load.slowest_post_s:.2f}s;"
        f" {enqueued / len(placed):.1f} queue enqueues per order;"
        " broker pause per process (seconds, reconnects): "
        + ", ".join(f"{n} {s:.1f}s/{int(r)}" for n, (s, r) in pauses.items())
    )
    return pauses


async def _broker_pause(scene: Scene, name: str) -> tuple[float, float]:
    """Seconds a process spent without its broker connections, and how often it got them back."""
    process = scene.system.processes[name]
    url = f"http://127.0.0.1:{process.metrics_port}/metrics"
    if name == "gateway":  # the gateway serves its metrics on its own port
        url = f"{scene.load.url}/metrics"
    async with httpx.AsyncClient() as client:
        text = (await client.get(url)).text
    found = Counter[str]()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name] += sample.value
    return found["warren_broker_pause_seconds_sum"], found["warren_broker_reconnects_total"]


async def test_stopping_the_node_leading_the_saga_queue_mid_load_loses_and_repeats_nothing(
    scene: Scene,
) -> None:
    async with scene.management() as api:
        queue = await api.queue(SAGA_QUEUE)
    assert queue is not None and len(queue["members"]) == 3, queue
    leader = scene.rabbit.node(queue["leader"])

    stall = await outage(scene, leader)

    async with scene.management() as api:
        moved = await api.queue(SAGA_QUEUE)
    assert moved is not None and moved["leader"] != leader.name
    await assert_every_order_once_and_clean(scene, stall)


async def test_stopping_the_node_every_service_is_on_mid_load_loses_and_repeats_nothing(
    scene: Scene,
) -> None:
    async with scene.management() as api:
        on = {c["node"] for c in await api.connections() if c.get("vhost") == scene.vhost}
    assert len(on) == 1, f"the services are spread over {on}"
    node = scene.rabbit.node(on.pop())

    stall = await outage(scene, node)

    async with scene.management() as api:
        now_on = {c["node"] for c in await api.connections() if c.get("vhost") == scene.vhost}
    assert now_on and node.name not in now_on, now_on
    pauses = await assert_every_order_once_and_clean(scene, stall)
    # each process's two connections (relay and publisher, consuming edge) came back elsewhere
    assert {name: reconnects >= 2 for name, (_, reconnects) in pauses.items()} == {
        name: True for name in pauses
    }, pauses
