"""Warren as `warren up` runs it: the gateway and every worker as separate processes."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from benchmarks.processes import Child, Children
from config.settings import DEV_API_KEY_ENTRY, Settings
from gateway.service import SERVICE as GATEWAY
from workers.ops.readiness import all_of, consumer_probe, http_probe, worker_probe
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
        "WARREN_METRICS_PORT": "0",  # any free port: the workers never clash
        "WARREN_HTTP_PORT": "0",  # a service's HTTP API too (the bench never calls it)
        "WARREN_GATEWAY_HOST": "127.0.0.1",
        "WARREN_GATEWAY_PORT": str(gateway_port),
        "PYTHONUNBUFFERED": "1",
        "_TYPER_STANDARD_TRACEBACK": "1",
    }
    return env | {f"WARREN_{s.upper()}_DB_URL": url for s, url in db_urls.items()}


def start_warren(
    children: Children, env: dict[str, str], settings: Settings, workers: bool = True
) -> list[Child]:
    """Start the gateway and (unless told otherwise) every worker, each with its relay.

    Each is ready when the broker shows it consuming (the gateway also answering /readyz), in
    the vhost of `env`'s broker URL; `settings` give the management API's address and user.
    """
    probing = settings.model_copy(update={"broker_url": SecretStr(env["WARREN_BROKER_URL"])})
    prefix = "" if workers else "lone-"
    readyz = http_probe(local_url(int(env["WARREN_GATEWAY_PORT"])) + "/readyz")
    gateway_consumes = consumer_probe(probing, GATEWAY.queue, f"{GATEWAY.name}-api")
    gateway_ready = all_of(readyz, gateway_consumes)
    started = [
        children.spawn(f"{prefix}gateway", "workers.cli", ["gateway"], env, probe=gateway_ready)
    ]
    for name in WORKERS if workers else ():
        probe = worker_probe(probing, name)
        started.append(children.spawn(name, "workers.cli", ["worker", name], env, probe=probe))
    return started
