"""The raw aio-pika baseline: one consumer process per role, driven in a closed loop from here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection
from pydantic import SecretStr

from benchmarks.chain import (
    EXCHANGE,
    FINAL_STATUS,
    HANDLED_BY,
    ROLES,
    STATUS,
    declare,
    message,
    queue_name,
)
from benchmarks.processes import Children
from benchmarks.timeline import Timeline, Window
from config.settings import Settings
from workers.ops.readiness import consumer_probe

SERIES = "baseline"
DRAIN_TIMEOUT_S = 60.0


class Baseline:
    """Starts chains (orders) and counts those whose final status event comes back."""

    def __init__(self, url: str, settings: Settings, timeline: Timeline) -> None:
        self._url, self._settings, self._timeline = url, settings, timeline
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._started: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._until = 0.0
        self._idle = asyncio.Event()  # set when the last chain in flight has finished
        self.failures = 0

    async def start(self, children: Children) -> None:
        """Declare the queues, start the role processes, consume the status events."""
        self._connection = await aio_pika.connect_robust(self._url)
        await declare(await self._connection.channel(), self._settings)
        env = {
            "WARREN_BENCH_AMQP_URL": self._url,
            "WARREN_BENCH_PREFETCH": str(self._settings.prefetch),
        }
        probing = self._settings.model_copy(update={"broker_url": SecretStr(self._url)})
        for role in ROLES:
            consumes = consumer_probe(probing, queue_name(role), f"baseline-{role}")
            module = "benchmarks.baseline_worker"
            children.spawn(f"baseline-{role}", module, [role], env, probe=consumes)
        publishing = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await publishing.get_exchange(EXCHANGE, ensure=False)
        consuming = await self._connection.channel()
        await consuming.set_qos(prefetch_count=self._settings.prefetch)
        statuses = await consuming.get_queue(queue_name(STATUS), ensure=False)
        await statuses.consume(self._on_status, no_ack=False)

    async def closed_loop(self, chains: int, duration_s: float) -> Window:
        """Keep `chains` chains in flight for `duration_s`, then let the last ones finish."""
        start = time.monotonic()
        self._until = start + duration_s
        for _ in range(chains):
            self._launch()
        await asyncio.sleep(duration_s)
        if self._started:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), DRAIN_TIMEOUT_S)
        self.failures += len(self._started)
        self._started.clear()
        offset = start - self._timeline.origin
        return Window(offset, offset + duration_s)

    def _launch(self) -> None:
        if time.monotonic() >= self._until:
            return
        task = asyncio.create_task(self._place(str(uuid.uuid4())))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _place(self, order_id: str) -> None:
        assert self._exchange is not None, "start() first"
        self._started[order_id] = time.monotonic()
        try:
            await self._exchange.publish(
                message("PlaceOrder", order_id), HANDLED_BY["PlaceOrder"], mandatory=True
            )
        except Exception:  # counted, and the chain is no longer waited for
            self._forget(order_id)
            self.failures += 1

    async def _on_status(self, incoming: AbstractIncomingMessage) -> None:
        body = json.loads(incoming.body)
        if body["status"] == FINAL_STATUS:
            started = self._forget(body["order_id"])
            if started is not None:
                self._timeline.record(SERIES, started, time.monotonic())
                self._launch()
        await incoming.ack()

    def _forget(self, order_id: str) -> float | None:
        started = self._started.pop(order_id, None)
        if not self._started:
            self._idle.set()
        return started

    async def close(self) -> None:
        """Close the driver's connection (the role processes are the caller's to stop)."""
        if self._connection is not None:
            await self._connection.close()
