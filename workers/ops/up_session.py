"""`warren up`'s session: its children under the supervisor, their logs, signals and failures."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import zlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from workers.ops.supervisor import Child, ChildDied, Supervisor, describe

if TYPE_CHECKING:
    from rich.console import Console

T = TypeVar("T")
TAIL_LINES = 20
PALETTE = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "bright_cyan",
    "bright_magenta",
    "bright_blue",
)


def style_for(name: str) -> str:
    """A colour for a service's log prefix, derived from its name (stable across runs)."""
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


def echo(console: Console, name: str) -> Callable[[str], None]:
    """Print a child's line behind its coloured name."""
    from rich.text import Text

    prefix = (f"{name:<9}| ", style_for(name))
    return lambda line: console.print(Text.assemble(prefix, Text.from_ansi(line)), soft_wrap=True)


class UpSession:
    """`warren up`'s children under the supervisor: signals, deaths and failures, on the console."""

    def __init__(self, children: list[Child], console: Console, stop_timeout_s: float) -> None:
        self.children, self.console, self.stop_timeout_s = children, console, stop_timeout_s
        self.supervisor = Supervisor()
        self.stop = asyncio.Event()
        self.exit_code = 0
        self._watcher: asyncio.Task[None] | None = None

    def install_signal_handlers(self) -> None:
        """Ctrl-C, SIGTERM or SIGHUP stop everything; a second one kills what is left."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal)

    def _on_signal(self) -> None:
        if self.stop.is_set():
            self.console.print("[red]killing what is left[/]")
            for child in self.children:
                child.signal(signal.SIGKILL)
            return
        self.console.print("[bold]stopping: every service drains (Ctrl-C again to kill)[/]")
        self.stop.set()

    def start(self) -> None:
        """Start every child; a death before the stop fails the session."""
        for child in self.children:
            self.supervisor.spawn(child)
            self.console.print(f"started {child.name} (pid {child.pid})")
        self._watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        child = await self.supervisor.first_death()
        if not self.stop.is_set():
            assert child.popen is not None
            message = f"{child.name} exited unexpectedly ({describe(child.popen.returncode)})"
            self.fail(f"{message}; `warren doctor` checks the services it needs", [child])

    async def ready(self, timeout_s: float) -> bool:
        """Wait until every child's probe says ready; a laggard fails the session."""
        try:
            await self.supervisor.ready(timeout_s)
        except TimeoutError:
            laggards = self.supervisor.laggards()
            names = ", ".join(c.name for c in laggards)
            self.fail(f"not ready after {timeout_s:g}s: {names}", laggards)
            return False
        except ChildDied:  # the watcher tells which one
            return False
        return True

    def fail(self, message: str, culprits: list[Child]) -> None:
        """Report a failure with the culprits' last lines, then stop everything with exit 1."""
        from rich.text import Text

        self.console.print(f"[bold red]{message}[/]")
        for child in culprits:
            self.console.print(f"[bold]last lines of {child.name}:[/]")
            self.console.print(Text(child.tail(TAIL_LINES)), soft_wrap=True)
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

    async def shutdown(self) -> None:
        """SIGTERM every child (they drain), SIGKILL stragglers after the grace period."""
        self.stop.set()
        if self._watcher is not None:
            self._watcher.cancel()
        stragglers = await self.supervisor.shutdown(self.stop_timeout_s)
        if stragglers:
            names = ", ".join(c.name for c in stragglers)
            self.console.print(f"[red]{names} did not stop in time: killed[/]")
