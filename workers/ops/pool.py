"""Local worker processes of one service, grown and shrunk by the autoscaler.

Growing waits until the new process consumes; shrinking sends SIGTERM to the newest one and
waits for it to exit: the worker stops consuming, finishes what it holds and acks it, so a
scale-down neither loses nor redelivers a message.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from loguru import logger

READY_LINE = b"consuming"


class LocalPool:
    """Processes running `python -m <module> <args>` with `env` (default: ours); `base` more
    replicas run outside the pool."""

    def __init__(
        self,
        service: str,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        base: int = 0,
        drain_timeout_s: float = 30.0,
    ) -> None:
        self.service, self._args, self._base = service, list(args), base
        self._env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        self._drain_timeout_s = drain_timeout_s
        self._processes: list[asyncio.subprocess.Process] = []
        self._readers: set[asyncio.Task[None]] = set()

    @property
    def size(self) -> int:
        """Replicas of the service, counting those outside the pool."""
        return self._base + len(self._processes)

    async def grow(self) -> None:
        """Start one more worker and wait until it consumes."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *self._args,
            env=self._env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._processes.append(process)
        assert process.stderr is not None
        while READY_LINE not in (line := await process.stderr.readline()):
            if not line:
                raise RuntimeError(f"a new {self.service} worker exited before it consumed")
        reader = asyncio.create_task(_discard(process.stderr))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        logger.info("{} worker {} started", self.service, process.pid)

    async def shrink(self) -> None:
        """Drain and stop the newest worker of the pool."""
        if not self._processes:
            return
        process = self._processes.pop()
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self._drain_timeout_s)
        except TimeoutError:
            logger.warning(
                "{} worker {} did not drain in time; killing it", self.service, process.pid
            )
            process.kill()
            await process.wait()
        logger.info("{} worker {} drained and stopped", self.service, process.pid)

    async def close(self) -> None:
        """Drain every worker of the pool."""
        while self._processes:
            await self.shrink()


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass
