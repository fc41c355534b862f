"""Background tasks that never die quietly: a failure is logged, counted and restarted.

A process's long-running parts (the gateway's relay and status projection, its idempotency-key
expiry) each run as a `BackgroundTask`. When one raises, it is restarted with exponential backoff
and jitter until the process stops; meanwhile `warren_background_task_up` is 0, the restarts are
counted in `warren_background_task_restarts_total`, and readiness can ask `healthy`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from enum import StrEnum

from loguru import logger

from outbox.backoff import retry_delay
from workers.runtime.metrics import TASK_RESTARTS, TASK_UP
from workers.runtime.outages import is_outage


class TaskState(StrEnum):
    STARTING = "starting"  # not yet up (first start, or after a failure)
    RUNNING = "running"
    WAITING = "waiting"  # an outage (a database or the broker away) stopped it; it starts again
    FAILED = "failed"  # a fault stopped it; it starts again after its backoff
    STOPPED = "stopped"


class BackgroundTask:
    """Runs `body(task)` until `stop` is set, restarting it with backoff whenever it fails.

    The body calls `task.up()` once it is doing its work; a body that returns before `stop` is
    set counts as a failure too (a background task is meant to run for the process's life).
    An outage (`workers.runtime.outages.is_outage`: the broker or a database away) is waited
    out the same way, but leaves the task `healthy`: only a fault makes it unhealthy.
    """

    def __init__(
        self,
        service: str,
        name: str,
        body: Callable[[BackgroundTask], Awaitable[None]],
        stop: asyncio.Event,
        *,
        base_s: float = 1.0,
        cap_s: float = 30.0,
    ) -> None:
        self.service, self.name = service, name
        self._body, self._stop = body, stop
        self._base_s, self._cap_s = base_s, cap_s
        self.state = TaskState.STARTING
        self.failed_since_up = False  # failed by a fault, and not up again since
        self.last_error: str | None = None  # the exception's type: never its text (secrets)
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        TASK_UP.labels(service, name).set(0)

    @property
    def healthy(self) -> bool:
        """False from a fault until the task is up again; an outage keeps it healthy."""
        return not self.failed_since_up

    def up(self) -> None:
        """The body is doing its work now."""
        self.state, self.failed_since_up = TaskState.RUNNING, False
        TASK_UP.labels(self.service, self.name).set(1)

    def start(self) -> None:
        """Run in the background until `stop`."""
        self._task = asyncio.create_task(self._run(), name=f"{self.service}:{self.name}")

    async def wait(self) -> None:
        """Until the task has ended (after `stop`)."""
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self.state = TaskState.STARTING
            try:
                await self._body(self)
                if self._stop.is_set():
                    break
                raise RuntimeError(f"{self.name} ended on its own")
            except Exception as exc:  # restarted below: this is what keeps it alive
                if self._stop.is_set():
                    logger.warning(
                        "{} {} failed while stopping: {}",
                        self.service,
                        self.name,
                        type(exc).__name__,
                    )
                    break
                failures = 1 if self.state is TaskState.RUNNING else failures + 1
                self._failed(exc)
                delay = retry_delay(failures, base_s=self._base_s, cap_s=self._cap_s)
                logger.warning(
                    "{} {} failed ({}: {}); restarting in {:.1f}s",
                    self.service,
                    self.name,
                    type(exc).__name__,
                    str(exc)[:200],
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
        self.state = TaskState.STOPPED
        TASK_UP.labels(self.service, self.name).set(0)

    def _failed(self, exc: Exception) -> None:
        if is_outage(exc):
            self.state = TaskState.WAITING
        else:
            self.state, self.failed_since_up = TaskState.FAILED, True
        self.last_error, self.restarts = type(exc).__name__, self.restarts + 1
        TASK_UP.labels(self.service, self.name).set(0)
        TASK_RESTARTS.labels(self.service, self.name, type(exc).__name__).inc()
