"""Run worker subprocesses and wait on conditions: the tools of the runtime's integration tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from config.settings import Environment, Settings
from workers.ops.readiness import Probe, consumer_probe
from workers.ops.supervisor import Child, ChildDied

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(
    condition: Callable[[], Awaitable[Any]], *, timeout: float = 30.0, what: str = "condition"
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await condition()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")


def consumer_ready(
    amqp_url: str, queue: str, role: str, management_url: str | None = None
) -> Probe:
    """The supervisor's probe: the child (connection `role@host:pid`) consumes `queue`."""
    settings = Settings(env=Environment.TEST, broker_url=SecretStr(amqp_url))
    if management_url is not None:
        settings = settings.model_copy(update={"management_url": management_url})
    return consumer_probe(settings, queue, role)


class Process:
    """A Python module run as a supervised child process, its output kept for assertions."""

    def __init__(
        self,
        module: str,
        env: dict[str, str],
        *,
        probe: Probe | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.metrics_port = free_port()
        full_env = os.environ | env | {"WARREN_METRICS_PORT": str(self.metrics_port)}
        self.child = Child(module, module, args or [], full_env, probe=probe, cwd=REPO)
        self.child.start()

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        """The running process."""
        assert self.child.popen is not None
        return self.child.popen

    @property
    def lines(self) -> list[str]:
        """Everything it wrote so far (stdout and stderr), line by line."""
        return list(self.child.lines)

    async def ready(self, timeout: float = 30.0) -> Process:
        """Wait for its probe; fail with the process's output if it died or timed out first."""
        try:
            await self.child.wait_ready(timeout)
        except ChildDied as exc:  # it says how, with its last lines
            raise AssertionError(f"process not ready: {exc}") from None
        except TimeoutError as exc:
            raise AssertionError(f"process not ready: {exc}\n{self.output()}") from None
        return self

    async def exited(self, timeout: float = 30.0) -> int:
        """Wait for the process to end; its return code (-9 for SIGKILL)."""
        return await self.child.exited(timeout)

    def terminate(self) -> None:
        """SIGTERM: ask for a graceful drain."""
        self.child.signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, no questions asked."""
        self.child.kill()

    def output(self) -> str:
        return self.child.tail(80)

    async def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples matching `labels`, read from the process's /metrics."""
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        total = 0.0
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total
