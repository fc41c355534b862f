"""One trace id spans the gateway and every service that worked on one order (W3C trace context)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx

from config.settings import DEV_API_KEY
from tests.support.harness import free_port
from tests.support.orders import order_body
from tests.support.roles import order_workers
from tests.support.system import WORKERS, System

ON_ORDER = order_workers()


def trace_ids_logged(lines: list[str]) -> set[str]:
    """Trace ids on the JSON log lines of one process."""
    found = set()
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("trace_id"):
            found.add(record["trace_id"])
    return found


async def test_one_trace_id_spans_the_gateway_and_every_worker(
    e2e_amqp_url: str, tmp_path: Path
) -> None:
    urls = {s: f"sqlite+inline:///{tmp_path / s}.db" for s in (*WORKERS, "gateway")}
    system = System(e2e_amqp_url, urls, tmp_path, WARREN_LOG_JSON="true", WARREN_LOG_LEVEL="DEBUG")
    trace_id = secrets.token_hex(16)
    try:
        await system.start(*ON_ORDER)
        port = free_port()
        await system.start_gateway(port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=40) as client:
            headers = {
                "Authorization": f"Bearer {DEV_API_KEY}",
                "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
            }
            placed = await client.post(
                "/orders",
                headers=headers,
                json=order_body(customer="traced"),
            )
            final = await client.get(
                placed.headers["Location"], params={"wait": 25}, headers=headers
            )
        assert final.json()["status"] == "CONFIRMED"
    finally:
        system.stop_all()
    for service in ("gateway", *ON_ORDER):
        assert trace_id in trace_ids_logged(system.processes_seen[service].lines), service
