"""Retries with jittered exponential backoff, exhausted budgets and poison, on the real broker."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from contracts.orders import PlaceOrder
from contracts.topology import exchange_for, routing_key_for
from outbox.amqp import amqp_message
from tests.conftest import DEFAULT_BACKENDS
from tests.support.harness import wait_for
from tests.support.probe_kit import ProbeKit, place_order
from workers.ops.management import Management

RETRY_BASE_S = 1.0
JITTER = 0.4
UNIT_S = 0.1


@pytest.fixture
def kit(amqp_url: str, database_url: str, tmp_path: Path) -> Iterator[ProbeKit]:
    probe = ProbeKit(amqp_url, database_url, tmp_path, f"t{uuid.uuid4().hex[:10]}")
    yield probe
    probe.stop_all()


def attempt_times(log: Path) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        times.setdefault(entry["order_id"], []).append(entry["t"])
    return times


async def test_transient_failures_are_retried_with_growing_jittered_gaps_and_applied_once(
    kit: ProbeKit,
) -> None:
    worker = await kit.start(
        WARREN_IMMEDIATE_RETRIES="0",
        WARREN_RETRY_BASE_S=str(RETRY_BASE_S),
        WARREN_RETRY_JITTER=str(JITTER),
    )
    orders = [await kit.place("fail-3") for _ in range(3)]
    await wait_for(
        lambda: worker.metric("warren_messages_handled_total", outcome="handled"),
        timeout=30,
        what="three orders to succeed on their fourth attempt",
    )
    await wait_for(lambda: _all_effects(kit, orders), timeout=30, what="every effect")

    gaps = {}
    for order, times in attempt_times(kit.log).items():
        assert len(times) == 4, f"{order} was attempted {len(times)} times"
        gaps[order] = [later - earlier for earlier, later in itertools.pairwise(times)]
        for attempt, gap in enumerate(gaps[order], start=1):
            ceiling = RETRY_BASE_S * 2 ** (attempt - 1)
            assert ceiling * (1 - JITTER) <= gap <= ceiling + UNIT_S + 0.3, (attempt, gap)
        assert gaps[order][0] < gaps[order][1] < gaps[order][2]
    assert len({tuple(round(g, 2) for g in seq) for seq in gaps.values()}) > 1, gaps
    for order in orders:
        assert await kit.effects(order) == 1
    assert await worker.metric("warren_retries_total", kind="delayed") == 9


async def _all_effects(kit: ProbeKit, orders: list[str]) -> bool:
    return all([await kit.effects(order) == 1 for order in orders])


@pytest.mark.parametrize("backend", DEFAULT_BACKENDS)  # the broker decides, not the SQLite driver
async def test_a_handler_that_always_fails_ends_in_the_dlq_with_every_failure_header(
    kit: ProbeKit, management: Management
) -> None:
    worker = await kit.start(
        WARREN_IMMEDIATE_RETRIES="1", WARREN_DELAYED_RETRIES="2", WARREN_RETRY_BASE_S="0.2"
    )
    order = await kit.place("always-fail")
    await wait_for(lambda: kit.ready_count(kit.dlq), what="the message to reach the DLQ")

    [dead] = await kit.drain_queue(kit.dlq)
    headers = dead.headers
    assert headers["failure-reason"] == "exhausted"
    assert headers["exception-type"] == "TransientError"
    assert "scripted failure" in headers["exception-message"]
    assert "TransientError" in headers["stack-trace"]
    assert headers["original-exchange"] == exchange_for(PlaceOrder)
    assert headers["original-routing-key"] == routing_key_for(PlaceOrder)
    assert headers["original-queue"] == kit.queue
    assert headers["attempts"] == 3
    assert headers["retry-attempt"] == 2
    assert headers["first-failure-at"] < headers["last-failure-at"]
    assert headers["worker"].startswith("scripted-worker@")
    assert order in dead.body.decode() and dead.type == "orders.PlaceOrder.v2"
    assert "x-death" not in headers  # a copy never carries the broker's dead-letter history
    assert await worker.metric("warren_dead_lettered_total", reason="exhausted") == 1
    assert await kit.effects(order) == 0

    vhost = unquote(kit.amqp_url.rsplit("/", 1)[1])

    async def drained() -> bool:
        body = await management.on(vhost).queue(kit.queue) or {}
        return body.get("messages") == 0 and body.get("messages_unacknowledged") == 0

    await wait_for(drained, timeout=20, what="the work queue to be empty with nothing unacked")


POISON = {
    "invalid JSON": ("orders.PlaceOrder.v2", b"{not json", "not valid JSON"),
    "unknown name": ("orders.Teleport.v1", b"{}", "unknown message type"),
    "newer version": ("orders.PlaceOrder.v9", b"{}", "newer than the newest"),
    "schema violation": ("orders.PlaceOrder.v2", None, "items.0.quantity"),
}


@pytest.mark.parametrize("backend", DEFAULT_BACKENDS)  # the broker decides, not the SQLite driver
async def test_poison_lands_in_the_dlq_at_once_and_the_worker_keeps_consuming(
    kit: ProbeKit,
) -> None:
    worker = await kit.start()
    bad_order = json.loads(place_order("ok").model_dump_json())
    bad_order["items"][0]["quantity"] = 0
    for name, (type_name, body, _) in POISON.items():
        message = amqp_message(
            body=body or json.dumps(bad_order).encode(),
            type=type_name,
            message_id=f"poison-{name}",
            correlation_id=None,
            timestamp=None,
            headers={},
            app_id="tests",
        )
        await kit.publish(message, routing_key_for(PlaceOrder), exchange_for(PlaceOrder))
    good = await kit.place("ok")
    await wait_for(lambda: kit.effects(good), what="the good order after the poison")
    await wait_for(lambda: _count_at_least(kit, kit.dlq, 4), what="four poison messages in the DLQ")

    dead = {m.message_id: m for m in await kit.drain_queue(kit.dlq)}
    for name, (_, _, explanation) in POISON.items():
        headers = dead[f"poison-{name}"].headers
        assert headers["failure-reason"] == "poison", name
        assert explanation in headers["exception-message"], (name, headers["exception-message"])
        assert headers["attempts"] == 1
    assert await worker.metric("warren_retries_total") == 0
    assert await worker.metric("warren_dead_lettered_total", reason="poison") == 4
    assert worker.proc.poll() is None


async def _count_at_least(kit: ProbeKit, queue: str, n: int) -> bool:
    return await kit.ready_count(queue) >= n
