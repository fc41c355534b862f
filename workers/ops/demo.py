"""`warren demo`: place a mix of orders over HTTP; each must reach the outcome its card and items
call for (visa or flaky with stock: CONFIRMED, declined: CANCELLED, out of stock: REJECTED).

As a shop would: an operator creates a demo user and an API key for it; with that key, each
order is a cart filled line by line, then checked out with an `Idempotency-Key`."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from uuid import uuid4

import typer

from config.settings import DEV_API_KEY, get_settings

if TYPE_CHECKING:  # httpx and rich are imported by the demo: `warren worker` loads this module
    import httpx
    from rich.console import Console
    from rich.progress import Progress

PLENTY = 1000  # SKUs with at least this much stock never run out in a demo, however often rerun
TERMINAL = ("CONFIRMED", "REJECTED", "CANCELLED")
PLACING_CONCURRENCY = 8
WAITING_CONCURRENCY = 32
LONG_POLL_S = 10.0  # short enough that an interrupted demo leaves the gateway no long wait
ADDRESS = {
    "name": "Ada",
    "line1": "1 Loop Rd",
    "city": "Bristol",
    "postal_code": "BS1",
    "country": "GB",
}


@dataclass(frozen=True)
class DemoOrder:
    """One order to place, and the outcome it must reach."""

    card: str
    lines: tuple[tuple[str, int], ...]
    expected: str
    key: str = field(default_factory=lambda: f"demo-{uuid4()}")

    @property
    def items(self) -> str:
        return ", ".join(f"{qty}x {sku}" for sku, qty in self.lines)


@dataclass
class Outcome:
    """What became of one demo order."""

    order: DemoOrder
    order_id: str | None = None
    status: str = "NOT PLACED"
    reason: str | None = None

    @property
    def matched(self) -> bool:
        return self.status == self.order.expected


def catalog_stock(path: Path) -> dict[str, int]:
    """Initial stock per SKU, from the catalog the inventory service starts with."""
    return {item["sku"]: int(item["stock"]) for item in json.loads(path.read_text())}


def expected_status(card: str, lines: tuple[tuple[str, int], ...], stock: dict[str, int]) -> str:
    """The saga reserves stock before it charges: out of stock wins over a declined card."""
    if any(qty > stock.get(sku, 0) for sku, qty in lines):
        return "REJECTED"
    return "CONFIRMED" if card in ("tok_visa", "tok_flaky") else "CANCELLED"


def demo_orders(count: int, stock: dict[str, int], rng: random.Random) -> list[DemoOrder]:
    """Mostly visa, some flaky; every tenth out of stock, every tenth declined, from the first."""
    plenty = sorted(sku for sku, units in stock.items() if units >= PLENTY)
    scarce = sorted((units, sku) for sku, units in stock.items() if units < PLENTY)
    if not plenty or not scarce:
        raise ValueError("the catalog needs SKUs with plenty of stock and SKUs with little")
    orders = []
    for i in range(count):
        card = {1: "tok_declined", 2: "tok_flaky", 7: "tok_flaky"}.get(i % 10, "tok_visa")
        if i % 10 == 0:  # more than there can ever be: rejected however often the demo runs
            units, sku = scarce[i // 10 % len(scarce)]
            lines: tuple[tuple[str, int], ...] = ((sku, units + 1),)
        else:
            skus = rng.sample(plenty, k=rng.randint(1, min(2, len(plenty))))
            lines = tuple((sku, rng.randint(1, 3)) for sku in skus)
        orders.append(DemoOrder(card, lines, expected_status(card, lines, stock)))
    return orders


async def _send(
    client: httpx.AsyncClient, method: str, path: str, deadline: float, **kwargs: Any
) -> httpx.Response:
    """One request, repeated after the Retry-After of each 429 while time is left."""
    while True:
        response = await client.request(method, path, **kwargs)
        if response.status_code != 429:
            return response
        retry_after = response.headers.get("Retry-After", "1")
        pause = float(retry_after) if retry_after.isdigit() else 1.0
        if time.monotonic() + pause > deadline:
            return response
        await asyncio.sleep(pause)


async def place(client: httpx.AsyncClient, outcome: Outcome, deadline: float) -> None:
    """A cart with the order's lines, checked out with its Idempotency-Key; record the order."""
    import httpx

    order = outcome.order
    try:
        created = await _send(client, "POST", "/carts", deadline)
        if created.status_code >= 400:
            _record(outcome, created)
            return
        cart = f"/carts/{created.json()['cart_id']}"
        for sku, quantity in order.lines:
            body = {"quantity": quantity}
            line = await _send(client, "PUT", f"{cart}/items/{sku}", deadline, json=body)
            if line.status_code >= 400:
                _record(outcome, line)
                return
        checkout = {"payment": {"token": order.card}, "shipping_address": ADDRESS}
        headers = {"Idempotency-Key": order.key}
        response = await _send(
            client, "POST", f"{cart}/checkout", deadline, json=checkout, headers=headers
        )
    except httpx.HTTPError as exc:
        outcome.status, outcome.reason = "ERROR", f"{type(exc).__name__}: {exc}"
        return
    _record(outcome, response)


async def settle(client: httpx.AsyncClient, outcome: Outcome, deadline: float) -> None:
    """Long-poll the order until its status is terminal or the deadline passes."""
    import httpx

    while outcome.order_id and outcome.status not in TERMINAL:
        wait = min(LONG_POLL_S, deadline - time.monotonic())
        if wait < 0.1:
            return
        path = f"/orders/{outcome.order_id}"
        try:
            response = await _send(client, "GET", path, deadline, params={"wait": f"{wait:.1f}"})
        except httpx.HTTPError:  # the gateway restarting, say: ask again shortly
            await asyncio.sleep(0.5)
            continue
        _record(outcome, response)
        if response.status_code >= 400:
            await asyncio.sleep(0.5)


def _record(outcome: Outcome, response: httpx.Response) -> None:
    if response.status_code < 400:
        order = response.json()
        outcome.order_id, outcome.status = order["order_id"], order["status"]
        outcome.reason = order["reason"]
    elif outcome.order_id is None:
        problem = response.json() if response.content else {}
        outcome.status = "ERROR"
        outcome.reason = f"HTTP {response.status_code}: {problem.get('detail') or problem}"


async def run_orders(
    client: httpx.AsyncClient, outcomes: list[Outcome], deadline: float, progress: Progress
) -> None:
    """Place and follow every order, a few at a time, advancing the two progress bars."""
    placing = progress.add_task("placing orders", total=len(outcomes))
    waiting = progress.add_task("waiting for outcomes", total=len(outcomes))
    place_slots = asyncio.Semaphore(PLACING_CONCURRENCY)
    wait_slots = asyncio.Semaphore(WAITING_CONCURRENCY)

    async def one(outcome: Outcome) -> None:
        async with place_slots:
            await place(client, outcome, deadline)
        progress.advance(placing)
        async with wait_slots:
            await settle(client, outcome, deadline)
        progress.advance(waiting)

    await asyncio.gather(*(one(o) for o in outcomes))


async def demo_user_key(operator: httpx.AsyncClient, deadline: float) -> str:
    """A new ACTIVE demo user's API key, created with the operator's key."""
    body = {"email": f"demo-{uuid4().hex[:12]}@example.com", "name": "Demo shopper"}
    created = await _send(operator, "POST", "/users", deadline, json=body)
    if created.status_code != 202:
        raise DemoFailed(f"could not create the demo user: HTTP {created.status_code}")
    wait = {"wait": f"{LONG_POLL_S:g}"}
    user: dict[str, Any] = {"status": "PENDING"}
    while user.get("status") == "PENDING" and time.monotonic() < deadline:
        user = (
            await _send(operator, "GET", created.headers["Location"], deadline, params=wait)
        ).json()
    if user.get("status") != "ACTIVE":
        raise DemoFailed(f"the demo user is {user.get('status')}, not ACTIVE: is accounts up?")
    issued = await _send(operator, "POST", f"/users/{user['user_id']}/keys", deadline)
    if issued.status_code != 201:
        raise DemoFailed(f"could not issue the demo user a key: HTTP {issued.status_code}")
    key: str = issued.json()["api_key"]
    return key


class DemoFailed(Exception):
    """The demo could not start placing orders; the message says why."""


async def run_demo(
    url: str,
    *,
    orders: int,
    console: Console,
    api_key: str = DEV_API_KEY,
    timeout_s: float = 60.0,
) -> bool:
    """Place `orders` demo orders at `url`, show what became of them; True if all as expected."""
    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    stock = catalog_stock(get_settings().catalog_path)
    outcomes = [Outcome(order) for order in demo_orders(orders, stock, random.Random())]
    deadline = time.monotonic() + timeout_s
    timeouts = httpx.Timeout(10.0, read=LONG_POLL_S + 10)
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn())
    operator = {"Authorization": f"Bearer {api_key}"}
    try:
        async with httpx.AsyncClient(base_url=url, headers=operator, timeout=timeouts) as client:
            user_key = await demo_user_key(client, deadline)
    except (DemoFailed, httpx.HTTPError) as exc:
        console.print(f"[red]{exc}[/] (is the gateway up at {url}?)")
        return False
    shopper = {"Authorization": f"Bearer {user_key}"}
    async with httpx.AsyncClient(base_url=url, headers=shopper, timeout=timeouts) as client:
        with Progress(*columns, console=console) as progress:
            await run_orders(client, outcomes, deadline, progress)
    show(outcomes, console, url, timeout_s)
    return all(o.matched for o in outcomes)


def show(outcomes: list[Outcome], console: Console, url: str, timeout_s: float) -> None:
    """The outcome of every order, then a summary per expected outcome."""
    from rich.table import Table

    table = Table(title="Demo orders", title_justify="left")
    for column in ("order", "card", "items", "status", "reason", "check"):
        table.add_column(column, no_wrap=column in ("order", "status"), overflow="fold")
    for o in outcomes:
        short = o.order_id[:8] if o.order_id else "-"
        check = "ok" if o.matched else f"[red]expected {o.order.expected}[/]"
        status = o.status if o.matched else f"[red]{o.status}[/]"
        table.add_row(short, o.order.card, o.order.items, status, o.reason or "", check)
    console.print(table)
    summary = Table(title="Summary", title_justify="left")
    for column in ("expected", "placed", "as expected"):
        summary.add_column(column, justify="left" if column == "expected" else "right")
    expected = Counter(o.order.expected for o in outcomes)
    matched = Counter(o.order.expected for o in outcomes if o.matched)
    for status, count in sorted(expected.items()):
        summary.add_row(status, str(count), str(matched[status]))
    console.print(summary)
    _verdict(outcomes, console, url, timeout_s)


def _verdict(outcomes: list[Outcome], console: Console, url: str, timeout_s: float) -> None:
    misses = [o for o in outcomes if not o.matched]
    if not misses:
        console.print(f"[green]all {len(outcomes)} orders reached their expected outcome[/]")
        return
    console.print(
        f"[red]{len(misses)} of {len(outcomes)} orders did not reach their expected outcome[/]"
    )
    if any(o.status == "ERROR" for o in misses):
        console.print(f"some orders were not accepted: is the gateway up at {url} (`warren up`)?")
    if any(o.status not in (*TERMINAL, "ERROR") for o in misses):
        console.print(f"some orders were still in flight after {timeout_s:g}s: are the workers up?")


def local_url(host: str, port: int) -> str:
    """An http URL for a listener, with the loopback address when it listens everywhere."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


def demo(
    orders: Annotated[int, typer.Option(min=3, help="How many orders to place.")] = 20,
    url: Annotated[str | None, typer.Option(help="The gateway; default from settings.")] = None,
    api_key: Annotated[str, typer.Option(help="The API key to place orders with.")] = DEV_API_KEY,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds for every order to reach its outcome.")
    ] = 60.0,
) -> None:
    """Place demo orders through the HTTP API and check each reaches its expected outcome."""
    from rich.console import Console

    settings = get_settings()
    url = url or local_url(settings.gateway_host, settings.gateway_port)
    ok = asyncio.run(
        run_demo(url, orders=orders, console=Console(), api_key=api_key, timeout_s=timeout)
    )
    raise typer.Exit(0 if ok else 1)
