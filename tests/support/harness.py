"""Run worker subprocesses and wait on conditions: the tools of the runtime's integration tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

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


class Process:
    """A Python module run as a separate process, its stderr kept for assertions."""

    def __init__(
        self,
        module: str,
        env: dict[str, str],
        *,
        ready_line: str | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.metrics_port = free_port()
        full_env = os.environ | env | {"WARREN_METRICS_PORT": str(self.metrics_port)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *(args or [])],
            cwd=REPO,
            env=full_env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._ready_line = ready_line
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if self._ready_line is None or self._ready_line in line:
                self._ready.set()
        self._ready.set()

    async def ready(self, timeout: float = 30.0) -> Process:
        """Wait for the ready line; fail with the process's output if it died first."""
        await asyncio.to_thread(self._ready.wait, timeout)
        if self.proc.poll() is not None or not self._ready.is_set():
            raise AssertionError(f"process not ready (exit {self.proc.poll()}):\n{self.output()}")
        return self

    async def exited(self, timeout: float = 30.0) -> int:
        """Wait for the process to end; its return code (-9 for SIGKILL)."""
        return await asyncio.to_thread(self.proc.wait, timeout)

    def terminate(self) -> None:
        """SIGTERM: ask for a graceful drain."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, no questions asked."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def output(self) -> str:
        return "".join(self.lines[-80:])

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
