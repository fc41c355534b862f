"""Child processes of a run: started in their own session, measured through /proc, always reaped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ChildDied(RuntimeError):
    """A child process exited while the run still needed it."""


def peak_rss_mb(pid: int | str = "self") -> float | None:
    """The peak resident set size (VmHWM) of a live process, in MiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a live process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Child:
    """One process: `python -m MODULE ARGS`, its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    lasting: bool = True  # a service the run needs until the end (not a load generator)

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        """The last lines it wrote."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return "(no output)"

    def check(self) -> None:
        """Raise `ChildDied`, with its last lines, if it is no longer running."""
        if not self.running:
            raise ChildDied(f"{self.name} exited ({self.popen.returncode}):\n{self.tail()}")

    async def exited(self, timeout_s: float) -> int:
        """Wait for it to end by itself; its exit code."""
        deadline = time.monotonic() + timeout_s
        while (code := self.popen.poll()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} still running after {timeout_s:g}s")
            await asyncio.sleep(0.05)
        return code


class Children:
    """Every process a run starts; `stop_all` ends them, politely first."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.all: list[Child] = []

    def spawn(
        self, name: str, module: str, args: list[str], env: dict[str, str], *, lasting: bool = True
    ) -> Child:
        """Start `python -m module args` in its own session (Ctrl-C reaches only us)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                env=os.environ | env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, popen, log, lasting)
        self.all.append(child)
        return child

    def check(self) -> None:
        """Raise `ChildDied` if any long-running child has exited."""
        for child in self.all:
            if child.lasting:
                child.check()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time so far of every running service child, and of this process as "bench"."""
        spent = {c.name: cpu_seconds(c.popen.pid) for c in self.all if c.lasting and c.running}
        return spent | {"bench": cpu_seconds(os.getpid())}

    def peak_rss_mb(self) -> dict[str, float]:
        """VmHWM of every child still running, by name."""
        peaks = {c.name: peak_rss_mb(c.popen.pid) for c in self.all if c.lasting and c.running}
        return {name: mb for name, mb in peaks.items() if mb is not None}

    def stop_all(self, grace_s: float = 8.0) -> None:
        """SIGTERM every running child (they drain), SIGKILL what is left after `grace_s`."""
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while any(c.running for c in self.all) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._signal(signal.SIGKILL)
        for child in self.all:
            child.popen.wait()

    def _signal(self, sig: signal.Signals) -> None:
        for child in self.all:
            if child.running:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.popen.pid, sig)
