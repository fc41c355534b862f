"""Local worker processes of one service, grown and shrunk by the autoscaler.

Growing waits until the supervisor's probe sees the new process consume; shrinking sends SIGTERM
to the newest one and waits for it to exit: the worker stops consuming, finishes what it holds
and acks it, so a scale-down neither loses nor redelivers a message.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence

from loguru import logger

from workers.ops.readiness import Probe
from workers.ops.supervisor import Child, ChildDied, Supervisor


class LocalPool:
    """Processes running `python -m <module> <args>` with `env` (default: ours), ready when
    `probe` says so; `base` more replicas run outside the pool."""

    def __init__(
        self,
        service: str,
        args: Sequence[str],
        *,
        probe: Probe,
        env: dict[str, str] | None = None,
        base: int = 0,
        drain_timeout_s: float = 30.0,
        ready_timeout_s: float = 60.0,
    ) -> None:
        self.service, self._module, self._args, self._base = service, args[0], list(args[1:]), base
        self._env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        self._probe = probe
        self._drain_timeout_s, self._ready_timeout_s = drain_timeout_s, ready_timeout_s
        self._supervisor = Supervisor()
        self._children: list[Child] = []

    @property
    def size(self) -> int:
        """Replicas of the service, counting those outside the pool."""
        return self._base + len(self._children)

    async def grow(self) -> None:
        """Start one more worker and wait until it consumes."""
        name = f"{self.service}-{len(self._children) + 1}"
        child = Child(name, self._module, self._args, self._env, probe=self._probe)
        self._children.append(self._supervisor.spawn(child))
        try:
            await child.wait_ready(self._ready_timeout_s)
        except (ChildDied, TimeoutError) as exc:
            self._children.remove(child)
            child.kill()
            raise RuntimeError(f"a new {self.service} worker never consumed: {exc}") from None
        logger.info("{} worker {} started", self.service, child.pid)

    async def shrink(self) -> None:
        """Drain and stop the newest worker of the pool."""
        if not self._children:
            return
        child = self._children.pop()
        if await child.stop(self._drain_timeout_s) == -signal.SIGKILL:
            logger.warning("{} worker {} did not drain in time: killed", self.service, child.pid)
        else:
            logger.info("{} worker {} drained and stopped", self.service, child.pid)

    async def close(self) -> None:
        """Drain every worker of the pool."""
        while self._children:
            await self.shrink()
