"""Drives a pipeline in a closed loop: start N, start another each time one finishes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from benchmarks.timeline import Timeline, Window

DRAIN_TIMEOUT_S = 60.0
# The first message of a pipeline: (exchange, routing key, message) for a pipeline id.
First = Callable[[str], tuple[str, str, aio_pika.Message]]


class PipelineDriver:
    """Starts pipelines and records each whose finishing message comes back as `series`."""

    def __init__(
        self, series: str, url: str, first: First, done_queue: str, timeline: Timeline
    ) -> None:
        self.series, self._url, self._first, self._done_queue = series, url, first, done_queue
        self._timeline = timeline
        self._connection: AbstractRobustConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._started: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._until = 0.0
        self._idle = asyncio.Event()  # set when the last pipeline in flight has finished
        self.failures = 0

    async def start(self, prefetch: int) -> None:
        """Connect, and consume the finishing messages (their queue exists already)."""
        self._connection = await aio_pika.connect_robust(self._url)
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        consuming = await self._connection.channel()
        await consuming.set_qos(prefetch_count=prefetch)
        done = await consuming.get_queue(self._done_queue, ensure=False)
        await done.consume(self._on_done, no_ack=False)

    async def closed_loop(self, in_flight: int, duration_s: float) -> Window:
        """Keep `in_flight` pipelines going for `duration_s`, then let the last ones finish."""
        start = time.monotonic()
        self._until = start + duration_s
        for _ in range(in_flight):
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

    async def _place(self, pipeline_id: str) -> None:
        assert self._channel is not None, "start() first"
        self._started[pipeline_id] = time.monotonic()
        exchange_name, routing_key, message = self._first(pipeline_id)
        try:
            exchange = await self._channel.get_exchange(exchange_name, ensure=False)
            await exchange.publish(message, routing_key, mandatory=True)
        except Exception:  # counted, and the pipeline is no longer waited for
            self._forget(pipeline_id)
            self.failures += 1

    async def _on_done(self, incoming: AbstractIncomingMessage) -> None:
        started = self._forget(json.loads(incoming.body)["pipeline_id"])
        if started is not None:
            self._timeline.record(self.series, started, time.monotonic())
            self._launch()
        await incoming.ack()

    def _forget(self, pipeline_id: str) -> float | None:
        started = self._started.pop(pipeline_id, None)
        if not self._started:
            self._idle.set()
        return started

    async def close(self) -> None:
        """Close the driver's connection (the step processes are the caller's to stop)."""
        if self._connection is not None:
            await self._connection.close()
