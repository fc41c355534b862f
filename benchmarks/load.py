"""Orders through Warren's HTTP API: POST /orders, then long-poll it to a terminal status.

The client is `benchmarks.leanhttp`: httpx would take a few ms of CPU per order from Warren.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from benchmarks.leanhttp import HttpError, LeanClient
from benchmarks.timeline import Timeline, Window
from config.settings import DEV_API_KEY

SERIES = "warren"
TERMINAL = frozenset({"CONFIRMED", "REJECTED", "CANCELLED"})
LONG_POLL_S = "10"
DRAIN_TIMEOUT_S = 60.0
ADDRESS = {"name": "Ada", "line1": "1 Loop Rd", "city": "Bristol", "postal_code": "BS1"}


def order_body(index: int, sku: str) -> dict[str, Any]:
    """A paying order for one unit of a plentiful SKU: it must end CONFIRMED."""
    return {
        "customer_id": f"bench-{index % 50}",
        "items": [{"sku": sku, "quantity": 1}],
        "payment": {"token": "tok_visa"},
        "shipping_address": ADDRESS | {"country": "GB"},
    }


class OrderLoad:
    """A pool of HTTP connections placing orders and recording when each is CONFIRMED."""

    def __init__(self, api_url: str, skus: list[str], timeline: Timeline) -> None:
        self._skus, self._timeline = skus, timeline
        self._count = itertools.count()
        url = urlsplit(api_url)
        self._client = LeanClient(
            url.hostname or "127.0.0.1",
            url.port or 80,
            {"Authorization": f"Bearer {DEV_API_KEY}"},
        )
        self.failures = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    async def _place_and_follow(self) -> str:
        index = next(self._count)
        body = order_body(index, random.choice(self._skus))
        key = {"Idempotency-Key": f"bench-{uuid.uuid4()}"}
        order = await self._client.request("POST", "/orders", body, key)
        while order["status"] not in TERMINAL:
            path = f"/orders/{order['order_id']}?wait={LONG_POLL_S}"
            order = await self._client.request("GET", path)
        return str(order["status"])

    async def one(self, started: float) -> None:
        """Place one order (due at `started`, a monotonic time) and record its confirmation."""
        try:
            status = await self._place_and_follow()
        except HttpError:
            status = "ERROR"
        if status == "CONFIRMED":
            self._timeline.record(SERIES, started, time.monotonic())
        else:
            self.failures += 1

    async def closed_loop(self, clients: int, duration_s: float) -> Window:
        """`clients` clients, each placing its next order once the last is terminal."""
        start = time.monotonic()
        until = start + duration_s

        async def client() -> None:
            while (now := time.monotonic()) < until:
                await self.one(now)

        async with asyncio.timeout(duration_s + DRAIN_TIMEOUT_S):
            await asyncio.gather(*(client() for _ in range(clients)))
        offset = start - self._timeline.origin
        return Window(offset, offset + duration_s)

    async def open_loop(self, rate: float, duration_s: float, warmup_s: float) -> Window:
        """An order every 1/rate seconds whatever happens (latency counts from its due time)."""
        start, tasks = time.monotonic(), set()
        for i in itertools.count():
            due = start + i / rate
            if due >= start + duration_s:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.add(asyncio.create_task(self.one(due)))
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
            for task in late:
                task.cancel()
            self.failures += len(late)
        offset = start - self._timeline.origin
        return Window(offset + warmup_s, offset + duration_s)
