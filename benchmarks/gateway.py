"""`POST /orders` on the gateway against a bare FastAPI endpoint, with the same load generator.

The gateway runs alone (its own vhost and database, no workers): it stores each order and its
PlaceOrder in its outbox and relays it, as in production; the bare endpoint only validates.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.load import order_body
from benchmarks.processes import Child, Children
from benchmarks.procfs import cpu_seconds
from benchmarks.system import free_port, local_url, start_warren, warren_env
from config.settings import DEV_API_KEY, Settings
from workers.ops.readiness import http_probe

START_MARGIN_S = 1.0  # load processes start together once all have imported


@dataclass(frozen=True)
class HttpRound:
    """One round of load against one server."""

    target: str
    requests_per_s: float
    errors: int
    server_cpu: float  # share of one core the server used during the round


class GatewayBench:
    """Runs the lone gateway and the bare endpoint, and loads them in turn."""

    def __init__(self, children: Children, run_dir: Path, connections: int, processes: int) -> None:
        self._children, self._run_dir = children, run_dir
        self._connections, self._processes = connections, processes
        self._ports = {"gateway": free_port(), "bare": free_port()}
        self._servers: dict[str, Child] = {}
        self._body = run_dir / "order.json"

    def start(self, settings: Settings, amqp_url: str, db_url: str) -> None:
        """Start both servers (`Children.ready` waits for them with the rest)."""
        self._body.write_text(json.dumps(order_body(0, "MUG-7")))
        env = warren_env(amqp_url, {"gateway": db_url}, self._run_dir, self._ports["gateway"])
        self._servers["gateway"] = start_warren(self._children, env, settings, workers=False)[0]
        bare_port = str(self._ports["bare"])
        healthz = http_probe(local_url(self._ports["bare"]) + "/healthz")
        self._servers["bare"] = self._children.spawn(
            "bare-app", "benchmarks.bare_app", [bare_port], {}, probe=healthz
        )

    async def round(self, target: str, seconds: float) -> HttpRound:
        """Load `target` ("gateway" or "bare") for `seconds` from several client processes."""
        start_at = time.time() + START_MARGIN_S
        args = [str(self._ports[target]), str(self._connections), str(seconds), str(start_at)]
        env = {"WARREN_BENCH_API_KEY": DEV_API_KEY}
        loaders = [
            self._children.spawn(
                f"load-{target}-{i}",
                "benchmarks.httpload",
                [*args, str(self._body)],
                env,
                lasting=False,
            )
            for i in range(self._processes)
        ]
        server = self._servers[target].pid
        await asyncio.sleep(max(0.0, start_at - time.time()))
        cpu_before = cpu_seconds(server)
        await asyncio.sleep(seconds)
        cpu_share = (cpu_seconds(server) - cpu_before) / seconds
        counts = await _collect(loaders, seconds)
        ok = sum(n for status, n in counts.items() if status.startswith("2"))
        return HttpRound(target, ok / seconds, sum(counts.values()) - ok, cpu_share)


async def _collect(loaders: list[Child], seconds: float) -> Counter[str]:
    counts: Counter[str] = Counter()
    for loader in loaders:
        code = await loader.exited(timeout_s=seconds + 30)
        last = loader.tail(1)
        if code != 0 or not last.startswith("{"):
            raise RuntimeError(f"{loader.name} failed (exit {code}):\n{loader.tail()}")
        counts.update(json.loads(last)["counts"])
    return counts
