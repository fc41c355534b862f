"""Carts and accounts under faults: instances killed at random, then each service stopped for 20 s.

Shoppers build and check out carts and an operator creates users and revokes keys, all through
the gateway, while instances of carts and accounts are killed with SIGKILL (and replaced), then
every carts instance is stopped for 20 s, then every accounts instance. Every call must be
answered (`2xx`, or `503` with `Retry-After` while carts is away), no accepted change lost, no
order made twice.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.settings import DEV_API_KEY
from contracts.accounts import RegisterUser
from tests.support.accounts import create_user, email, issue_key
from tests.support.harness import Process, free_port, wait_for
from tests.support.orders import order_body
from tests.support.roles import api_services, consumer_of
from tests.support.system import WORKERS, System
from workers.ops.verify import verify

SHOPPERS = 4
INSTANCES = 2
KILLS = 4
OUTAGE_S = 20.0
CHECKOUT = {k: v for k, v in order_body().items() if k in ("payment", "shipping_address")}
ANSWERED = {200, 201, 202}


@dataclass
class Tally:
    """Every answer the clients got, and what was accepted."""

    statuses: Counter[int] = field(default_factory=Counter)
    unanswered: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    checkouts: dict[str, dict[str, int]] = field(default_factory=dict)  # order id -> lines
    users: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)


async def call(
    client: httpx.AsyncClient, tally: Tally, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    """Send until the answer is not a 503; each answer must be a success or a 503 saying when."""
    while True:
        try:
            answer = await client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            tally.unanswered.append(f"{method} {path}: {type(exc).__name__}")
            raise
        tally.statuses[answer.status_code] += 1
        if answer.status_code == 503:
            if not answer.headers.get("Retry-After", "").isdigit():
                tally.wrong.append(f"{method} {path}: 503 without Retry-After")
            await asyncio.sleep(0.2)
            continue
        if answer.status_code not in ANSWERED:
            tally.wrong.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
        return answer


async def shop(client: httpx.AsyncClient, tally: Tally, stop: asyncio.Event) -> None:
    """Carts of two SKUs, one changed, checked out; repeated until `stop`."""
    rng = random.Random()
    while not stop.is_set():
        cart = (await call(client, tally, "POST", "/carts")).json()["cart_id"]
        lines = {"MUG-7": rng.randint(1, 3), "BOOK-42": 1}
        for sku, quantity in lines.items():
            await call(
                client, tally, "PUT", f"/carts/{cart}/items/{sku}", json={"quantity": quantity}
            )
        lines["MUG-7"] = rng.randint(1, 3)
        body = {"quantity": lines["MUG-7"]}
        await call(client, tally, "PUT", f"/carts/{cart}/items/MUG-7", json=body)
        key = {"Idempotency-Key": str(uuid.uuid4())}
        order = await call(
            client, tally, "POST", f"/carts/{cart}/checkout", json=CHECKOUT, headers=key
        )
        if order.status_code == 202:
            tally.checkouts[order.json()["order_id"]] = lines


async def administer(client: httpx.AsyncClient, tally: Tally, stop: asyncio.Event) -> None:
    """Users created, each given a key that is then revoked; repeated until `stop`."""
    while not stop.is_set():
        created = await call(client, tally, "POST", "/users", json={"email": email(), "name": "Op"})
        user = created.json()["user_id"]
        tally.users.append(user)
        settled = await call(client, tally, "GET", f"/users/{user}", params={"wait": 25})
        if settled.json()["status"] != "ACTIVE":
            continue  # accounts is away: the user stays PENDING for now, and is checked later
        key = await call(client, tally, "POST", f"/users/{user}/keys")
        key_id = key.json()["key_id"]
        await call(client, tally, "DELETE", f"/users/{user}/keys/{key_id}")
        tally.revoked.append(key.json()["api_key"])


class Instances:
    """Two instances each of carts and accounts, killed and replaced on demand."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.running: dict[tuple[str, int], Process] = {}

    async def start(self, name: str, slot: int) -> None:
        process = self.system.worker(name, slot)
        self.running[(name, slot)] = process
        await process.ready(60)

    def kill(self, name: str, slot: int) -> None:
        self.running.pop((name, slot)).kill()

    def stop_all(self) -> None:
        for process in self.running.values():
            process.kill()
        self.running.clear()


@pytest.mark.parametrize("backend", ["postgres"])
@pytest.mark.timeout(600)
async def test_carts_and_accounts_lose_nothing_when_killed_and_stopped(
    e2e_amqp_url: str,
    backend: str,
    make_database_url: Callable[[str], str],
    tmp_path: Path,
) -> None:
    urls = {s: make_database_url(backend) for s in (*WORKERS, "gateway")}
    system = System(e2e_amqp_url, urls, tmp_path)
    faulty = (*api_services(), consumer_of(RegisterUser).name)
    instances = Instances(system)
    tally = Tally()
    try:
        await system.start(*(w for w in WORKERS if w not in faulty))
        await asyncio.gather(*(instances.start(n, s) for n in faulty for s in range(INSTANCES)))
        port = free_port()
        # the load is not about rate limits: every client may call as fast as it can
        await system.start_gateway(
            port, WARREN_RATE_LIMIT_PER_S="10000", WARREN_RATE_LIMIT_BURST="10000"
        )
        url = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {DEV_API_KEY}"}
        async with httpx.AsyncClient(base_url=url, headers=auth, timeout=40) as operator:
            shoppers = [await create_user(operator) for _ in range(SHOPPERS)]
            keys = [(await issue_key(operator, u["user_id"]))["api_key"] for u in shoppers]
        clients = [
            httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {k}"}, timeout=40)
            for k in (*keys, DEV_API_KEY)
        ]
        stop = asyncio.Event()
        load = [asyncio.create_task(shop(c, tally, stop)) for c in clients[:SHOPPERS]]
        load.append(asyncio.create_task(administer(clients[-1], tally, stop)))

        # SIGKILLs of single instances, each replaced
        rng = random.Random()
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            name, slot = rng.choice(faulty), rng.randrange(INSTANCES)
            instances.kill(name, slot)
            await instances.start(name, slot)
        # then each service away for OUTAGE_S, all its instances at once
        paused: dict[str, float] = {}
        for name in faulty:
            started = time.monotonic()
            for slot in range(INSTANCES):
                instances.kill(name, slot)
            await asyncio.sleep(OUTAGE_S)
            await asyncio.gather(*(instances.start(name, s) for s in range(INSTANCES)))
            paused[name] = time.monotonic() - started
        await asyncio.sleep(3.0)  # a little load after the last restart
        stop.set()
        await asyncio.gather(*load)
        for c in clients:
            await c.aclose()

        print(
            f"\nchaos: {len(tally.checkouts)} checkouts, {len(tally.users)} users, "
            f"{len(tally.revoked)} keys revoked, answers {dict(tally.statuses)}, "
            f"outages {', '.join(f'{n} {s:.0f}s' for n, s in paused.items())}"
        )
        assert tally.unanswered == [] and tally.wrong == []
        assert tally.checkouts and tally.statuses[503] > 0  # the load did meet the outage

        # every checkout is one CONFIRMED order with exactly the lines last set
        orders = await system.wait_terminal(tally.checkouts, timeout=180)
        for order_id, lines in tally.checkouts.items():
            order = orders[order_id]
            assert order.status == "CONFIRMED", (order_id, order.status, order.reason)
            assert {i["sku"]: i["quantity"] for i in order.items} == lines
        assert set(await system.orders()) == set(tally.checkouts)  # none made twice or stray

        # every accepted user settles ACTIVE; every revoked key is refused
        async with httpx.AsyncClient(base_url=url, headers=auth, timeout=40) as operator:
            for user in tally.users:
                shown = await operator.get(f"/users/{user}", params={"wait": 25})
                assert shown.json()["status"] == "ACTIVE", shown.text
        for key in tally.revoked:
            async with httpx.AsyncClient(base_url=url, timeout=10) as anyone:
                answer = await anyone.get(
                    f"/carts/{uuid.uuid4()}", headers={"Authorization": f"Bearer {key}"}
                )
                assert answer.status_code == 401

        async def clean() -> bool:
            return not await verify(system.settings())

        await wait_for(clean, timeout=60, what="warren verify to find nothing")
    finally:
        instances.stop_all()
        system.stop_all()
