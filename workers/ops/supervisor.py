"""Child processes run as one: start them, echo their logs, notice deaths, stop them gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import zlib
from asyncio.subprocess import DEVNULL, PIPE, STDOUT
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx
from rich.console import Console
from rich.text import Text

T = TypeVar("T")
TAIL_LINES = 20
PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta", "red")


def style_of(name: str) -> str:
    """A colour for a service's log prefix: stable for a name, whatever services exist."""
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


@dataclass
class Child:
    """One service run as `python -m workers.cli gateway|worker NAME`, its last lines kept."""

    name: str
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def args(self) -> list[str]:
        return ["gateway"] if self.name == "gateway" else ["worker", self.name]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None


class Supervisor:
    """Starts the children, echoes their logs, notices deaths and stops them all gracefully."""

    def __init__(self, children: list[Child], console: Console, stop_timeout_s: float) -> None:
        self.children, self.console, self.stop_timeout_s = children, console, stop_timeout_s
        self.stop = asyncio.Event()
        self.exit_code = 0
        self._followers: list[asyncio.Task[None]] = []

    def install_signal_handlers(self) -> None:
        """Ctrl-C, SIGTERM or SIGHUP stop everything; a second one kills what is left."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal)

    def _on_signal(self) -> None:
        if self.stop.is_set():
            self.console.print("[red]killing what is left[/]")
            self._signal_all(signal.SIGKILL)
            return
        self.console.print("[bold]stopping: every service drains (Ctrl-C again to kill)[/]")
        self.stop.set()

    async def start(self) -> None:
        """Start every child in its own process group: signals reach them only through us."""
        for child in self.children:
            child.process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "workers.cli", *child.args),
                env=child.env,
                stdin=DEVNULL,
                stdout=PIPE,
                stderr=STDOUT,
                start_new_session=True,
                limit=2**20,
            )
            self.console.print(f"started {child.name} (pid {child.process.pid})")
            self._followers.append(asyncio.create_task(self._follow(child)))

    async def _follow(self, child: Child) -> None:
        assert child.process is not None and child.process.stdout is not None
        prefix = (f"{child.name:<9}| ", style_of(child.name))
        async for raw in child.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            child.tail.append(line)
            if "consuming" in line and child.name != "gateway":
                child.ready.set()
            self.console.print(Text.assemble(prefix, Text.from_ansi(line)), soft_wrap=True)
        code = await child.process.wait()
        if not self.stop.is_set():
            message = f"{child.name} exited unexpectedly ({_describe(code)})"
            self.fail(f"{message}; `warren doctor` checks the services it needs", [child])

    def fail(self, message: str, culprits: list[Child]) -> None:
        """Report a failure with the culprits' last lines, then stop everything with exit 1."""
        self.console.print(f"[bold red]{message}[/]")
        for child in culprits:
            self.console.print(f"[bold]last lines of {child.name}:[/]")
            self.console.print(Text("\n".join(child.tail) or "(no output)"), soft_wrap=True)
        self.exit_code = 1
        self.stop.set()

    async def unless_stopped(self, awaitable: Awaitable[T]) -> T | None:
        """The awaitable's result, or None if the stop came first (it is then cancelled)."""
        task, stopped = asyncio.ensure_future(awaitable), asyncio.create_task(self.stop.wait())
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None

    async def ready(self, api_url: str, timeout_s: float) -> bool:
        """Wait until the gateway's /readyz answers 200 and every worker logged "consuming"."""
        gateway, *workers = self.children
        try:
            async with asyncio.timeout(timeout_s):
                await _gateway_ready(api_url)
                gateway.ready.set()  # it consumes too; its readiness is /readyz
                for child in workers:
                    await child.ready.wait()
        except TimeoutError:
            laggards = [c for c in self.children if not c.ready.is_set()]
            names = ", ".join(c.name for c in laggards)
            self.fail(f"not ready after {timeout_s:g}s: {names}", laggards)
            return False
        return True

    async def shutdown(self) -> None:
        """SIGTERM every child (they drain), wait, SIGKILL stragglers, collect the last output."""
        self.stop.set()
        self._signal_all(signal.SIGTERM)
        processes = [c.process for c in self.children if c.process is not None]
        try:
            async with asyncio.timeout(self.stop_timeout_s):
                for process in processes:
                    await process.wait()
        except TimeoutError:
            stragglers = ", ".join(c.name for c in self.children if c.running)
            self.console.print(f"[red]{stragglers} did not stop in time: killed[/]")
            self._signal_all(signal.SIGKILL)
            for process in processes:
                await process.wait()
        await asyncio.gather(*self._followers, return_exceptions=True)

    def _signal_all(self, sig: signal.Signals) -> None:
        for child in self.children:
            if child.running and child.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, sig)


def _describe(code: int) -> str:
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


async def _gateway_ready(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=2.0) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
