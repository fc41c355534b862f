"""The autoscaler: worker replicas follow queue depth.

desired = clamp(ceil(backlog / target per worker), min, max), where backlog = ready + unacked
messages of the service's work queue. Up at once; down only to the highest recommendation of the
stabilisation window, and one replica at a time, always by a graceful drain. The same thresholds
are in the KEDA ScaledObjects (compose/kubernetes/keda.yaml).

See `docs/architecture.md`, "Processes and scaling".
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from loguru import logger
from prometheus_client import Counter, Gauge

from config.settings import Settings
from workers.ops.management import Management
from workers.runtime.discovery import service

BACKLOG = Gauge("warren_autoscaler_backlog_messages", "Ready + unacked messages seen.", ["service"])
DESIRED = Gauge("warren_autoscaler_desired_replicas", "Replicas the policy asks for.", ["service"])
REPLICAS = Gauge("warren_autoscaler_replicas", "Worker processes running.", ["service"])
DECISIONS = Counter(
    "warren_autoscaler_decisions_total", "Scale-ups and scale-downs made.", ["service", "direction"]
)


@dataclass(frozen=True, slots=True)
class ScalePolicy:
    """Thresholds shared with the KEDA ScaledObjects."""

    target_per_worker: int = 100
    min_replicas: int = 1
    max_replicas: int = 4
    stabilisation_s: float = 60.0
    interval_s: float = 5.0

    def desired(self, backlog: int) -> int:
        """Replicas for a backlog: ceil(backlog / target), clamped to [min, max]."""
        wanted = math.ceil(max(0, backlog) / self.target_per_worker)
        return max(self.min_replicas, min(self.max_replicas, wanted))


class Recommendations:
    """Recent desired counts; scaling down never goes below the window's highest."""

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._seen: deque[tuple[float, int]] = deque()

    def add(self, desired: int, now: float) -> int:
        """Record a recommendation; the count to scale down to (the window's maximum)."""
        self._seen.append((now, desired))
        while self._seen and self._seen[0][0] < now - self._window_s:
            self._seen.popleft()
        return max(count for _, count in self._seen)


def next_replicas(current: int, desired: int, floor: int) -> int:
    """Where to go from `current`: straight up to `desired`, or one step down towards `floor`."""
    if desired > current:
        return desired
    if floor < current:
        return current - 1
    return current


class Pool(Protocol):
    """Worker processes of one service."""

    @property
    def size(self) -> int: ...

    async def grow(self) -> None: ...

    async def shrink(self) -> None: ...


class Autoscaler:
    """One control loop for several services."""

    def __init__(
        self,
        settings: Settings,
        pools: dict[str, Pool],
        policy: ScalePolicy,
        queues: dict[str, str] | None = None,
    ) -> None:
        self._settings, self._pools, self._policy = settings, pools, policy
        self._queues = queues or {name: service(name).queue for name in pools}
        self._windows = {name: Recommendations(policy.stabilisation_s) for name in pools}

    async def run(self, stop: asyncio.Event) -> None:
        """Decide every interval until `stop`."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:  # the management API may blink; try again next interval
                logger.warning("autoscaler tick failed: {}", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._policy.interval_s)

    async def tick(self) -> None:
        """Read every backlog once and move each service one decision."""
        async with Management(self._settings) as api:
            backlogs = {name: await _backlog(api, self._queues[name]) for name in self._pools}
        for name, backlog in backlogs.items():
            await self._decide(name, backlog)

    async def _decide(self, name: str, backlog: int) -> None:
        pool = self._pools[name]
        desired = self._policy.desired(backlog)
        floor = self._windows[name].add(desired, time.monotonic())
        target = next_replicas(pool.size, desired, floor)
        BACKLOG.labels(name).set(backlog)
        DESIRED.labels(name).set(desired)
        if target != pool.size:
            direction = "up" if target > pool.size else "down"
            logger.info(
                "scale {} {}: {} -> {} (backlog {})", name, direction, pool.size, target, backlog
            )
            DECISIONS.labels(name, direction).inc()
        while pool.size < target:
            await pool.grow()
        while pool.size > target:
            await pool.shrink()
        REPLICAS.labels(name).set(pool.size)


async def _backlog(api: Management, queue_name: str) -> int:
    queue = await api.queue(queue_name)
    if queue is None:
        return 0
    return int(queue.get("messages_ready") or 0) + int(queue.get("messages_unacknowledged") or 0)
