"""Crashes at the worst moments lose nothing and duplicate no effect (real SIGKILL, real broker)."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_BACKENDS
from tests.support.harness import wait_for
from tests.support.probe_kit import ProbeKit


@pytest.fixture
def kit(amqp_url: str, database_url: str, tmp_path: Path) -> Iterator[ProbeKit]:
    probe = ProbeKit(amqp_url, database_url, tmp_path, f"t{uuid.uuid4().hex[:10]}")
    yield probe
    probe.stop_all()


async def test_killed_before_commit_the_message_is_redelivered_and_applied_once(
    kit: ProbeKit,
) -> None:
    first = await kit.start(WARREN_CRASHPOINTS="worker-before-commit")
    order = await kit.place("ok")
    assert await first.exited() == -9
    assert await kit.effects(order) == 0

    second = await kit.start()
    await wait_for(
        lambda: second.metric("warren_messages_handled_total", outcome="handled"),
        what="the redelivered message to be handled",
    )
    assert await kit.effects(order) == 1
    assert await second.metric("warren_duplicates_absorbed_total") == 0


async def test_killed_after_commit_before_ack_the_inbox_absorbs_the_redelivery(
    kit: ProbeKit,
) -> None:
    first = await kit.start(WARREN_CRASHPOINTS="worker-after-commit")
    order = await kit.place("ok")
    assert await first.exited() == -9
    assert await kit.effects(order) == 1

    second = await kit.start()
    await wait_for(
        lambda: second.metric("warren_duplicates_absorbed_total"),
        what="the redelivery to be absorbed as a duplicate",
    )
    assert await kit.effects(order) == 1
    assert await second.metric("warren_duplicates_absorbed_total") == 1
    assert await kit.ready_count(kit.queue) == 0


async def test_relay_killed_after_confirm_before_mark_publishes_again_and_consumer_absorbs(
    amqp_url: str, make_database_url, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    tag = f"relay-crash-{backend}"
    producer = ProbeKit(amqp_url, make_database_url(backend), tmp_path, f"{tag}-producer")
    listener = ProbeKit(amqp_url, make_database_url(backend), tmp_path, f"{tag}-listener")
    try:
        listening = await listener.start(PROBE_MESSAGES="orders.OrderStatusChanged")
        first = await producer.start(WARREN_CRASHPOINTS="relay-after-confirm")
        order = await producer.place("ok")
        assert await first.exited() == -9
        await wait_for(lambda: listener.effects(order), what="the first copy of the event")

        await producer.start()
        await wait_for(
            lambda: listening.metric("warren_duplicates_absorbed_total"),
            what="the republished event to be absorbed",
        )
        assert await listener.effects(order) == 1
        assert await producer.effects(order) == 1
    finally:
        producer.stop_all()
        listener.stop_all()


@pytest.mark.parametrize("backend", DEFAULT_BACKENDS)  # the broker decides, not the SQLite driver
async def test_a_message_that_kills_its_worker_every_time_ends_in_the_dlq_by_delivery_limit(
    kit: ProbeKit,
) -> None:
    worker = await kit.start(WARREN_DELIVERY_LIMIT="2")
    order = await kit.place("crash")
    for _ in range(6):
        assert await worker.exited() == -9

        # the broker settles the dead worker's delivery a moment after the kill: back to the
        # queue, or past its limit into the DLQ; a worker started before then would wait forever
        async def settled() -> str | None:
            if await kit.ready_count(kit.dlq):
                return "dead-lettered"
            return "returned" if await kit.ready_count(kit.queue) else None

        if (
            await wait_for(settled, what="the broker to settle the killed delivery")
            == "dead-lettered"
        ):
            break
        # the redelivered message may kill it before the broker lists it as a consumer
        worker = kit.spawn(WARREN_DELIVERY_LIMIT="2")
    [dead] = await kit.drain_queue(kit.dlq)
    assert dead.headers["x-first-death-reason"] == "delivery_limit"
    assert order in dead.body.decode()
    assert await kit.ready_count(kit.queue) == 0


@pytest.mark.parametrize("backend", DEFAULT_BACKENDS)
async def test_a_worker_killing_message_among_100_good_ones_dead_letters_only_itself(
    kit: ProbeKit,
) -> None:
    # given a killer among 100 good messages, in the first prefetch window of a frozen worker
    worker, deaths = await kit.start(WARREN_PREFETCH="32"), 0
    worker.proc.send_signal(signal.SIGSTOP)
    try:
        good = await kit.place_many("ok", 10)
        killer = await kit.place("crash")
        good += await kit.place_many("ok", 90)
    finally:
        worker.proc.send_signal(signal.SIGCONT)

    # when the worker is started again each time it dies
    async def settled_or_dead() -> str | None:
        if worker.proc.poll() is not None:
            return "dead"
        settled = await kit.distinct_effects() == 100 and await kit.ready_count(kit.dlq) == 1
        return "settled" if settled else None

    while await wait_for(settled_or_dead, timeout=120, what="a death or the end") == "dead":
        deaths += 1
        assert deaths <= 6, "the killer was never convicted"
        worker = kit.spawn(WARREN_PREFETCH="32")

    # then only the killer is dead-lettered, as a crash loop, and each good one applied once
    [dead] = await kit.drain_queue(kit.dlq)
    print(f"deaths {deaths}, dead-lettered 1 ({dead.headers.get('failure-reason')})")
    assert killer in dead.body.decode()
    assert dead.headers["failure-reason"] == "crash-loop"
    assert dead.headers["original-queue"] == kit.queue
    assert await kit.effects() == 100
    assert await kit.effects(killer) == 0
    assert await kit.ready_count(kit.queue) == 0
