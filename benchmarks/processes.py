"""The processes of a run, on the one supervisor (workers/ops/supervisor.py), logs in files."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.procfs import cpu_seconds, peak_rss_mb
from workers.ops.readiness import Probe
from workers.ops.supervisor import Child, ChildDied, Supervisor

__all__ = ["Child", "ChildDied", "Children"]


class Children:
    """Every process a run starts; `ready` waits on their probes, `stop_all` ends them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.supervisor = Supervisor()

    @property
    def all(self) -> list[Child]:
        """Every child started so far."""
        return self.supervisor.all

    def spawn(
        self,
        name: str,
        module: str,
        args: list[str],
        env: dict[str, str],
        *,
        lasting: bool = True,
        probe: Probe | None = None,
    ) -> Child:
        """Start `python -m module args` in its own session, its output in `log_dir/NAME.log`."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        child = Child(name, module, args, os.environ | env, probe, lasting=lasting, log=log)
        return self.supervisor.spawn(child)

    async def ready(self, timeout_s: float = 90) -> None:
        """Wait until every lasting child's probe says ready (a death fails the wait)."""
        await self.supervisor.ready(timeout_s)

    def check(self) -> None:
        """Raise `ChildDied` if any long-running child has exited."""
        self.supervisor.check()

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time so far of every running service child, and of this process as "bench"."""
        spent = {c.name: cpu_seconds(c.pid) for c in self.all if c.lasting and c.running}
        return spent | {"bench": cpu_seconds(os.getpid())}

    def peak_rss_mb(self) -> dict[str, float]:
        """VmHWM of every child still running, by name."""
        peaks = {c.name: peak_rss_mb(c.pid) for c in self.all if c.lasting and c.running}
        return {name: mb for name, mb in peaks.items() if mb is not None}

    def stop_all(self, grace_s: float = 8.0) -> None:
        """SIGTERM every running child (they drain), SIGKILL what is left after `grace_s`."""
        self.supervisor.stop_all(grace_s)
