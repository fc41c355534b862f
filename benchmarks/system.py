"""Warren as `warren up` runs it: the gateway and every worker as separate processes."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from benchmarks.processes import Child, Children
from config.settings import DEV_API_KEY_ENTRY
from workers.runtime.discovery import services, worker_names

WORKERS = worker_names()
WORK_QUEUES = tuple(s.queue for s in services())
PLENTY = 10**9  # stock that no run can exhaust
STEP_TIMEOUT_S = "3600"  # saga timers fire long after the run: no displaced load between rounds


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def local_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def bench_catalog(source: Path, target: Path) -> list[str]:
    """Copy the catalog with endless stock for its plentiful SKUs; those SKUs."""
    items = json.loads(source.read_text("utf-8"))
    plentiful = [item["sku"] for item in items if item["stock"] >= 1000]
    for item in items:
        if item["sku"] in plentiful:
            item["stock"] = PLENTY
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(items, indent=1), "utf-8")
    return plentiful


def warren_env(
    amqp_url: str, db_urls: Mapping[str, str], run_dir: Path, gateway_port: int
) -> dict[str, str]:
    """Settings of every Warren child: this run's vhost and databases, quiet logs, no limits."""
    env = {
        "WARREN_ENV": "test",
        "WARREN_BROKER_URL": amqp_url,
        "WARREN_VAR_DIR": str(run_dir / "var"),
        "WARREN_CATALOG_PATH": str(run_dir / "catalog.json"),
        "WARREN_LOG_LEVEL": "WARNING",
        "WARREN_LOG_JSON": "false",
        "WARREN_API_KEYS": json.dumps([DEV_API_KEY_ENTRY]),
        "WARREN_RATE_LIMIT_PER_S": "1000000",  # the limiter still runs; it just never refuses
        "WARREN_RATE_LIMIT_BURST": "1000000",
        "WARREN_RESERVE_TIMEOUT_S": STEP_TIMEOUT_S,
        "WARREN_PAYMENT_TIMEOUT_S": STEP_TIMEOUT_S,
        "WARREN_SHIPMENT_TIMEOUT_S": STEP_TIMEOUT_S,
        "WARREN_DRAIN_TIMEOUT_S": "5",
        "WARREN_OTLP_ENDPOINT": "",
        "WARREN_METRICS_HOST": "127.0.0.1",
        "WARREN_METRICS_PORT": "0",  # any free port: four workers never clash
        "WARREN_GATEWAY_HOST": "127.0.0.1",
        "WARREN_GATEWAY_PORT": str(gateway_port),
        "PYTHONUNBUFFERED": "1",
        "_TYPER_STANDARD_TRACEBACK": "1",
    }
    return env | {f"WARREN_{s.upper()}_DB_URL": url for s, url in db_urls.items()}


def start_warren(children: Children, env: dict[str, str], workers: bool = True) -> list[Child]:
    """Start the gateway and (unless told otherwise) every worker, each with its relay."""
    prefix = "" if workers else "lone-"
    started = [children.spawn(f"{prefix}gateway", "workers.cli", ["gateway"], env)]
    for name in WORKERS if workers else ():
        started.append(children.spawn(name, "workers.cli", ["worker", name], env))
    return started


async def wait_http(url: str, children: Children, timeout_s: float = 90) -> None:
    """Wait until `url` answers 200 (a child dying first fails the wait)."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            children.check()
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer 200 within {timeout_s:g}s")
            await asyncio.sleep(0.2)
