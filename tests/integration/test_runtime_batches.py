"""Deliveries handled together in one transaction keep every per-message guarantee.

A backlog is built while the worker is frozen (SIGSTOP), so that it takes its prefetch at once
and handles it in batches; failures inside a batch must still be decided message by message.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import Process, wait_for
from tests.support.probe_kit import ProbeKit

BATCHING = {"WARREN_PREFETCH": "32", "WARREN_HANDLER_BATCH_SIZE": "16"}


@pytest.fixture
def kit(amqp_url: str, database_url: str, tmp_path: Path) -> Iterator[ProbeKit]:
    probe = ProbeKit(amqp_url, database_url, tmp_path, f"t{uuid.uuid4().hex[:10]}")
    yield probe
    probe.stop_all()


async def _frozen_backlog(kit: ProbeKit, worker: Process, *modes: tuple[str, int]) -> list[str]:
    """Publish while the worker is stopped, then let it go; the order ids, in publishing order."""
    worker.proc.send_signal(signal.SIGSTOP)
    try:
        orders = []
        for mode, count in modes:
            orders += await kit.place_many(mode, count)
    finally:
        worker.proc.send_signal(signal.SIGCONT)
    return orders


def _attempts(kit: ProbeKit) -> Counter[str]:
    return Counter(json.loads(line)["order_id"] for line in kit.log.read_text().splitlines())


async def test_a_failing_message_is_taken_out_of_its_batch_and_the_rest_apply_once(
    kit: ProbeKit,
) -> None:
    worker = await kit.start(WARREN_IMMEDIATE_RETRIES="1", **BATCHING)
    modes = [("ok", 40), ("permanent", 2), ("ok", 40), ("fail-1", 3), ("ok", 40)]
    orders = await _frozen_backlog(kit, worker, *modes)
    poison = orders[40:42]
    flaky = orders[82:85]
    good = [order for order in orders if order not in poison]

    await wait_for(
        lambda: _handled_at_least(worker, len(good)), timeout=60, what="every good order"
    )
    assert await kit.distinct_effects() == len(good)
    assert await kit.effects() == len(good)  # none twice, though batches were tried again
    for order in poison:
        assert await kit.effects(order) == 0

    dead = await kit.drain_queue(kit.dlq)
    assert sorted(json.loads(message.body)["order_id"] for message in dead) == sorted(poison)
    for message in dead:
        assert message.headers["failure-reason"] == "poison"
        assert message.headers["exception-type"] == "PermanentError"
        assert message.headers["attempts"] == 1

    attempts = _attempts(kit)
    assert [attempts[order] for order in flaky] == [2, 2, 2]  # its try in the batch counted
    assert await worker.metric("warren_retries_total", kind="immediate") == 3
    assert await worker.metric("warren_retries_total", kind="delayed") == 0
    batches = await worker.metric("warren_handler_batch_size_count")
    batched = await worker.metric("warren_handler_batch_size_sum")
    assert batches >= 1 and batched / batches > 2, (batches, batched)
    assert await worker.metric("warren_messages_handled_total", outcome="handled") == len(good)
    assert await worker.metric("warren_dead_lettered_total", reason="poison") == 2
    assert worker.proc.poll() is None


async def test_killed_after_a_batch_commits_every_redelivery_is_absorbed(kit: ProbeKit) -> None:
    first = await kit.start(WARREN_CRASHPOINTS="worker-after-commit", **BATCHING)
    orders = await _frozen_backlog(kit, first, ("ok", 60))
    assert await first.exited() == -9
    committed = await kit.effects()
    assert committed >= 2, "the first batch held one message: nothing was batched"

    second = await kit.start(**BATCHING)
    await wait_for(
        lambda: _handled_at_least(second, len(orders) - committed),
        timeout=60,
        what="the rest of the backlog",
    )
    await wait_for(
        lambda: _duplicates_at_least(second, committed), what="every redelivery absorbed"
    )
    assert await kit.effects() == len(orders)
    assert await kit.distinct_effects() == len(orders)
    assert await second.metric("warren_duplicates_absorbed_total") == committed


async def _handled_at_least(worker: Process, count: int) -> bool:
    return await worker.metric("warren_messages_handled_total", outcome="handled") >= count


async def _duplicates_at_least(worker: Process, count: int) -> bool:
    return await worker.metric("warren_duplicates_absorbed_total") >= count
