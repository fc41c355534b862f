"""The one process supervisor: `warren up`, the autoscaler's pools, the benchmarks and the tests.

Each child runs `python -m MODULE ARGS` in its own session (signals reach it only through us),
is ready when its probe says so (see `workers/ops/readiness.py`, never its log lines), and is
stopped with SIGTERM (it drains), then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workers.ops.readiness import Probe

KEPT_LINES = 10_000
POLL_S = 0.05
PROBE_EVERY_S = 0.25
READER_JOIN_S = 2.0


class ChildDied(RuntimeError):
    """A child exited while it was still needed."""


@dataclass(eq=False)
class Child:
    """One `python -m MODULE ARGS` process; its output goes to `log`, or is kept and echoed."""

    name: str
    module: str
    args: list[str]
    env: dict[str, str]
    probe: Probe | None = None
    lasting: bool = True  # needed until the end (a load generator is not)
    log: Path | None = None
    on_line: Callable[[str], None] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=KEPT_LINES), init=False)
    ready: bool = field(default=False, init=False)
    _reader: threading.Thread | None = field(default=None, init=False, repr=False)

    def start(self) -> None:
        """Start it in a new session; its stdout and stderr together."""
        out = self.log.open("wb") if self.log is not None else None
        try:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if out is None else out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if out is not None:
                out.close()
        if out is None:
            self._reader = threading.Thread(target=self._read, name=f"{self.name}-out", daemon=True)
            self._reader.start()

    def _read(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None
        for raw in self.popen.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if self.on_line is not None:
                self.on_line(line)

    @property
    def pid(self) -> int:
        """Its process id (also its process group's)."""
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def running(self) -> bool:
        """Started and not yet exited."""
        return self.popen is not None and self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        """Its last lines of output."""
        if self.log is not None:
            with contextlib.suppress(OSError):
                return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
            return "(no output)"
        return "\n".join(list(self.lines)[-lines:]) or "(no output)"

    def check(self) -> None:
        """Raise `ChildDied`, with its last lines, if it is no longer running."""
        if self.popen is not None and not self.running:
            self._finish_output()
            raise ChildDied(
                f"{self.name} exited ({describe(self.popen.returncode)}):\n{self.tail()}"
            )

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` to its process group, if it still runs."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until its probe says ready; `ChildDied` if it exits first, `TimeoutError` after."""
        deadline, last_error = time.monotonic() + timeout_s, ""
        while not self.ready:
            self.check()
            try:
                self.ready = self.probe is None or await self.probe(self.pid)
            except Exception as exc:  # a probe that cannot ask yet is a "not yet"
                last_error = f" (last probe error: {type(exc).__name__}: {exc})"
            if not self.ready:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} not ready after {timeout_s:g}s{last_error}")
                await asyncio.sleep(PROBE_EVERY_S)

    async def exited(self, timeout_s: float) -> int:
        """Wait for it to end; its exit code (negative: the signal that ended it)."""
        deadline = time.monotonic() + timeout_s
        while (code := self.popen.poll() if self.popen else None) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} still running after {timeout_s:g}s")
            await asyncio.sleep(POLL_S)
        return code

    async def stop(self, grace_s: float) -> int:
        """SIGTERM (it drains), SIGKILL if it outlives `grace_s`; its exit code."""
        self.signal(signal.SIGTERM)
        try:
            return await self.exited(grace_s)
        except TimeoutError:
            return self.kill()

    def kill(self) -> int:
        """SIGKILL, no questions asked; its exit code, once its last output is read."""
        self.signal(signal.SIGKILL)
        code = self.popen.wait() if self.popen is not None else 0
        self._finish_output()
        return code

    def _finish_output(self) -> None:
        """Let the reader take the last lines of a child that has exited."""
        if self._reader is not None:
            self._reader.join(timeout=READER_JOIN_S)


class Supervisor:
    """Children started, made ready, watched and stopped as one."""

    def __init__(self) -> None:
        self.all: list[Child] = []

    def spawn(self, child: Child) -> Child:
        """Start `child` and keep it."""
        child.start()
        self.all.append(child)
        return child

    async def ready(self, timeout_s: float) -> None:
        """Wait until every lasting child is ready (`ChildDied` or `TimeoutError` otherwise)."""
        waiting = [c.wait_ready(timeout_s) for c in self.all if c.lasting and not c.ready]
        await asyncio.gather(*waiting)

    def laggards(self) -> list[Child]:
        """Lasting children not (yet) ready."""
        return [c for c in self.all if c.lasting and not c.ready]

    def check(self) -> None:
        """Raise `ChildDied` if a lasting child has exited."""
        for child in self.all:
            if child.lasting:
                child.check()

    async def first_death(self) -> Child:
        """Wait until a lasting child exits; that child."""
        while True:
            for child in self.all:
                if child.lasting and child.popen is not None and not child.running:
                    return child
            await asyncio.sleep(POLL_S * 4)

    async def shutdown(self, grace_s: float) -> list[Child]:
        """SIGTERM every child, SIGKILL what is left after `grace_s`; those it had to kill."""
        return await asyncio.to_thread(self.stop_all, grace_s)

    def stop_all(self, grace_s: float = 8.0) -> list[Child]:
        """`shutdown` for code outside any event loop."""
        for child in self.all:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while any(c.running for c in self.all) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        stragglers = [c for c in self.all if c.running]
        for child in self.all:
            child.kill()
        return stragglers


def describe(code: int | None) -> str:
    """An exit code as a person reads it."""
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"
