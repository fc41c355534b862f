"""`warren dlq`: replay, dry runs, kills halfway, list/show/export/purge, on the real broker.

Each test owns a probe group (queue `scripted.<group>` and its DLQ) and a switch file: the switch
worker dead-letters everything while the file says `fail` (no retries; each message is sent once
the one before is dead-lettered, so the DLQ holds them in the order they were sent) and applies
one effect per order once it says `ok`. The CLI runs as a subprocess against the test vhost,
as an operator would run it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import pytest

from config.settings import Settings
from contracts.envelope import Envelope
from contracts.orders import CancelOrder, PlaceOrder
from contracts.registry import default_registry
from contracts.topology import exchange_for, routing_key_for
from outbox.amqp import ConfirmedPublisher, from_wire
from tests.conftest import MakeDatabaseUrl
from tests.support.harness import REPO, Process, wait_for
from tests.support.probe_kit import ProbeKit, place_order
from workers.ops.management import Management
from workers.runtime.delay import Scheduler

PLACE, CANCEL = "orders.PlaceOrder", "orders.CancelOrder"


@dataclass(frozen=True)
class Sent:
    message_id: str
    order_id: str
    name: str


class DlqKit(ProbeKit):
    """A probe group with a switch worker and the `warren dlq` command pointed at it."""

    def __init__(self, amqp_url: str, database_url: str, tmp_path: Path) -> None:
        super().__init__(amqp_url, database_url, tmp_path, f"d{uuid.uuid4().hex[:10]}")
        self.switch = tmp_path / f"{self.group}.switch"
        self.switch.write_text("fail")

    async def start_switch(self, **extra: str) -> Process:
        """Start the switch worker: no retries, one message at a time."""
        env = self.env(
            SWITCH_FILE=str(self.switch),
            WARREN_IMMEDIATE_RETRIES="0",
            WARREN_DELAYED_RETRIES="0",
            WARREN_PREFETCH="1",
            **extra,
        )
        process = Process("tests.support.switch_worker", env, probe=self.consuming())
        self.processes.append(process)
        return await process.ready()

    def flip(self) -> None:
        self.switch.write_text("ok")

    async def send(self, names: list[str]) -> list[Sent]:
        """Publish one message per name (PlaceOrder or CancelOrder), confirmed, in order."""
        sent = []
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            for name in names:
                contract: PlaceOrder | CancelOrder = (
                    place_order("x") if name == PLACE else _cancel()
                )
                wire = default_registry().encode(Envelope(contract))
                message = from_wire(wire, "tests")
                exchange = await channel.get_exchange(exchange_for(type(contract)))
                await exchange.publish(message, routing_key_for(type(contract)), mandatory=True)
                sent.append(Sent(wire.message_id, str(contract.order_id), name))
        return sent

    async def dead_letter(self, names: list[str]) -> list[Sent]:
        """Send messages while the switch says fail, each once the one before is in the DLQ.

        The worker has a consumer per message type, so two messages sent together can be
        dead-lettered in either order; one at a time, the DLQ holds them in the order sent.
        """
        sent: list[Sent] = []
        for name in names:
            sent += await self.send([name])
            count = len(sent)
            await wait_for(
                lambda count=count: _at_least(self, self.dlq, count), what=f"{count} dead letters"
            )
        return sent

    async def dlq_ids_draining(self) -> list[str]:
        """The DLQ's message ids head first, taking them off (the authoritative order)."""
        return [m.message_id or "" for m in await self.drain_queue(self.dlq)]

    async def dlq_ids_browsing(self) -> list[str]:
        """The DLQ's message ids head first, all given back in their order (nothing acked)."""
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(self.dlq)
            ids = []
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                ids.append(message.message_id or "")
            return ids  # closing the channel requeues every unacked message at its place

    async def dlq_id_set(self) -> set[str]:
        """Ids of every ready DLQ message; they all go back (order does not matter here)."""
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(self.dlq)
            ids = set()
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                ids.add(message.message_id or "")
            return ids

    async def effect_counts(self, sent: list[Sent]) -> dict[str, int]:
        return {s.message_id: await self.effects(s.order_id) for s in sent}

    async def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `warren dlq ARGS` against the test vhost, with no terminal attached."""
        env = os.environ | self.env() | {"COLUMNS": "250"}
        command = [sys.executable, "-m", "workers.cli", "dlq", *args]
        return await asyncio.to_thread(
            subprocess.run,
            command,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def cli_process(self, *args: str) -> Process:
        process = Process("workers.cli", self.env(), args=["dlq", *args])
        self.processes.append(process)
        return process


def _cancel() -> CancelOrder:
    return CancelOrder(order_id=uuid.uuid4())


async def _at_least(kit: ProbeKit, queue: str, n: int) -> bool:
    return await kit.ready_count(queue) >= n


@pytest.fixture
def kit(amqp_url: str, make_database_url: MakeDatabaseUrl, tmp_path: Path) -> Iterator[DlqKit]:
    dlq_kit = DlqKit(amqp_url, make_database_url("sqlite-inline"), tmp_path)
    yield dlq_kit
    dlq_kit.stop_all()


def _names(places: int, cancel_every: int) -> list[str]:
    """`places` PlaceOrders with a CancelOrder after every `cancel_every` of them."""
    names: list[str] = []
    for number in range(1, places + 1):
        names.append(PLACE)
        if number % cancel_every == 0:
            names.append(CANCEL)
    return names


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
async def test_replay_by_type_with_a_limit_replays_the_oldest_and_keeps_the_rest_in_order(
    kit: DlqKit, queue_type: str, management: Management
) -> None:
    # given 50 PlaceOrders and 5 CancelOrders dead-lettered by a failing handler
    await kit.start_switch(WARREN_QUEUE_TYPE=queue_type)
    sent = await kit.dead_letter(_names(50, cancel_every=10))
    assert len(sent) == 55
    vhost = unquote(urlsplit(kit.amqp_url).path.lstrip("/"))
    described = await management.on(vhost).queue(kit.dlq) or {}
    assert described.get("type") == queue_type  # each type gives messages back differently
    kit.flip()

    # when the operator replays 20 PlaceOrders
    result = await kit.cli("replay", kit.dlq, "--type", PLACE, "--limit", "20", "--yes")
    assert result.returncode == 0, result.stderr
    assert "replayed 20 message(s)" in result.stdout

    # then the 20 oldest PlaceOrders are processed exactly once each
    replayed = [s for s in sent if s.name == PLACE][:20]
    await wait_for(lambda: _effects_total(kit, sent, 20), what="20 replayed orders to be processed")
    await wait_for(lambda: _work_queue_settled(kit), what="the work queue to drain")
    counts = await kit.effect_counts(sent)
    assert {s.message_id: counts[s.message_id] for s in replayed} == {
        s.message_id: 1 for s in replayed
    }
    assert sum(counts.values()) == 20
    # and everything else is still dead-lettered, in its original order
    expected = [s.message_id for s in sent if s not in replayed]
    assert await kit.dlq_ids_draining() == expected


async def _effects_total(kit: DlqKit, sent: list[Sent], n: int) -> bool:
    return sum((await kit.effect_counts(sent)).values()) >= n


async def _work_queue_settled(kit: DlqKit) -> bool:
    return await kit.ready_count(kit.queue) == 0


async def test_a_dry_run_and_an_unconfirmed_replay_move_nothing(kit: DlqKit) -> None:
    # given 8 dead letters and a worker that would now succeed
    await kit.start_switch()
    sent = await kit.dead_letter(_names(6, cancel_every=3))
    kit.flip()
    ids = [s.message_id for s in sent]

    # when: a dry run, with and without time and id filters
    dry = await kit.cli("replay", kit.dlq, "--dry-run")
    recent = await kit.cli("replay", kit.dlq, "--dry-run", "--since", "1h", "--type", CANCEL)
    old = await kit.cli("replay", kit.dlq, "--dry-run", "--until", "1h")
    one = await kit.cli("replay", kit.dlq, "--dry-run", "--id", ids[3], "--reason", "exhausted")
    # and a replay with neither --yes nor a terminal to ask on
    refused = await kit.cli("replay", kit.dlq)

    # then they report what would be replayed ...
    assert dry.returncode == 0, dry.stderr
    assert "8 message(s) would be replayed" in dry.stdout
    assert "2 message(s) would be replayed" in recent.stdout
    assert "0 message(s) would be replayed" in old.stdout
    assert "1 message(s) would be replayed" in one.stdout and ids[3] in one.stdout
    assert refused.returncode == 2
    assert "refusing to replay 8 message(s)" in refused.stderr and "--yes" in refused.stderr
    # ... and nothing moved: no effect, the DLQ holds the same messages in the same order
    assert sum((await kit.effect_counts(sent)).values()) == 0
    assert await kit.ready_count(kit.queue) == 0
    assert await kit.dlq_ids_draining() == ids


async def test_a_replay_killed_halfway_loses_nothing_and_a_second_replay_finishes_the_job(
    kit: DlqKit,
) -> None:
    # given 30 dead letters and a worker that now succeeds
    await kit.start_switch()
    sent = await kit.dead_letter([PLACE] * 30)
    kit.flip()

    # when a slow replay is killed after a few messages were processed
    replay = kit.cli_process("replay", kit.dlq, "--rate", "5", "--yes")
    await wait_for(lambda: _effects_total(kit, sent, 4), what="a few replayed orders")
    replay.kill()
    assert await replay.exited() == -9

    # then every message is either processed or still dead-lettered, none applied twice
    async def accounted() -> bool:
        done = {m for m, n in (await kit.effect_counts(sent)).items() if n}
        return {s.message_id for s in sent} <= done | await kit.dlq_id_set()

    await wait_for(accounted, what="every message to be processed or back in the DLQ")
    counts = await kit.effect_counts(sent)
    assert 4 <= sum(counts.values()) < 30 and max(counts.values()) == 1

    # and replaying the rest processes each order exactly once (the inbox absorbs duplicates)
    result = await kit.cli("replay", kit.dlq, "--yes")
    assert result.returncode == 0, result.stderr
    await wait_for(lambda: _effects_total(kit, sent, 30), what="all 30 orders processed")
    await wait_for(lambda: _work_queue_settled(kit), what="the work queue to drain")
    assert set((await kit.effect_counts(sent)).values()) == {1}
    assert await kit.ready_count(kit.dlq) == 0


async def test_list_show_and_export_describe_the_dlq_and_leave_it_as_it_was(
    kit: DlqKit, tmp_path: Path
) -> None:
    # given 6 dead letters: 4 PlaceOrders and 2 CancelOrders
    await kit.start_switch()
    sent = await kit.dead_letter(_names(4, cancel_every=2))
    # the DLQ's own order: the edge's consumers (one per binding) may dead-letter in parallel
    ids = await kit.dlq_ids_browsing()
    assert sorted(ids) == sorted(s.message_id for s in sent)
    by_id = {s.message_id: s for s in sent}

    listed = await kit.cli("list")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if kit.dlq in line]
    assert " 6 " in row and "exhausted: TransientError x6" in row

    letters = json.loads((await kit.cli("show", kit.dlq, "--json", "--limit", "3")).stdout)
    assert [letter["message_id"] for letter in letters] == ids[:3]
    assert letters[0] | _EXPECTED_FAILURE == letters[0]
    assert letters[0]["original_queue"] == kit.queue
    for letter in letters:
        kind = "orders.CancelOrder.v1" if by_id[letter["message_id"]].name == CANCEL else None
        if kind is not None:
            assert letter["type"] == kind and letter["original_routing_key"] == CANCEL

    target = tmp_path / "dead.jsonl"
    exported = await kit.cli("export", kit.dlq, str(target))
    assert exported.returncode == 0, exported.stderr
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["properties"]["message_id"] for r in records] == ids
    assert records[0]["body_encoding"] == "utf-8"
    first = by_id[records[0]["properties"]["message_id"]]
    assert json.loads(records[0]["body"])["order_id"] == first.order_id
    assert records[0]["headers"]["failure-reason"] == "exhausted"
    assert await kit.dlq_ids_draining() == ids


async def test_purge_by_id_keeps_the_others_in_order_and_purge_all_empties_the_dlq(
    kit: DlqKit,
) -> None:
    await kit.start_switch()
    ids = [s.message_id for s in await kit.dead_letter(_names(4, cancel_every=2))]

    refused = await kit.cli("purge", kit.dlq, "--id", ids[1], "--id", ids[4])
    assert refused.returncode == 2 and "--yes" in refused.stderr
    purged = await kit.cli("purge", kit.dlq, "--id", ids[1], "--id", ids[4], "--yes")
    assert purged.returncode == 0, purged.stderr
    assert "purged 2 message(s)" in purged.stdout
    remaining = json.loads((await kit.cli("show", kit.dlq, "--json")).stdout)
    assert [letter["message_id"] for letter in remaining] == [ids[0], ids[2], ids[3], ids[5]]

    everything = await kit.cli("purge", kit.dlq, "--yes")
    assert "purged 4 message(s)" in everything.stdout
    assert await kit.ready_count(kit.dlq) == 0


_EXPECTED_FAILURE = {
    "type": "orders.PlaceOrder.v2",
    "reason": "exhausted",
    "exception_type": "TransientError",
    "exception_message": "the switch says fail",
    "attempts": 1,
    "original_exchange": "orders.commands",
    "original_routing_key": PLACE,
    "replay_count": 0,
}


async def test_a_crash_loop_dead_letter_from_the_broker_is_shown_and_replayed(
    kit: DlqKit,
) -> None:
    # given a message the broker dead-lettered at the delivery limit (no headers of ours)
    worker = await kit.start_switch(WARREN_DELIVERY_LIMIT="1")
    worker.kill()
    [sent] = await kit.send([PLACE])
    await _reject_until_dead_lettered(kit)

    shown = json.loads((await kit.cli("show", kit.dlq, "--json")).stdout)
    assert shown[0]["message_id"] == sent.message_id
    assert shown[0]["reason"] == "crash-loop"
    assert shown[0]["original_exchange"] == "orders.commands"
    assert shown[0]["original_routing_key"] == PLACE
    assert shown[0]["original_queue"] == kit.queue

    # when the crash-loop dead letters are replayed
    result = await kit.cli("replay", kit.dlq, "--reason", "crash-loop", "--yes")
    assert result.returncode == 0, result.stderr

    # then the copy is back in the work queue, marked, without the broker's dead-letter headers
    headers = await _peek_work_queue(kit)
    assert headers["replay-count"] == 1 and headers["retry-attempt"] == 0
    replayed_at = datetime.fromisoformat(headers["replayed-at"])
    assert replayed_at >= datetime.fromisoformat(shown[0]["last_failure_at"])
    assert not {"x-death", "x-first-death-reason", "x-first-death-queue"} & headers.keys()
    # and once the cause is fixed it is processed once
    kit.flip()
    await kit.start_switch(WARREN_DELIVERY_LIMIT="1")
    await wait_for(lambda: kit.effects(sent.order_id), what="the replayed order")
    assert await kit.effects(sent.order_id) == 1
    assert await kit.ready_count(kit.dlq) == 0


async def _peek_work_queue(kit: DlqKit) -> dict[str, Any]:
    """The headers of the message at the head of the work queue, which stays there."""
    connection = await aio_pika.connect(kit.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(kit.queue)
        message = await wait_for(lambda: queue.get(no_ack=False, fail=False), what="the copy")
        return dict(message.headers or {})


async def _reject_until_dead_lettered(kit: DlqKit) -> None:
    """Reject with requeue until the delivery limit sends the message to the DLQ.

    Not a fixed number of rejects: the killed worker may have been handed it first.
    """
    connection = await aio_pika.connect(kit.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(kit.queue)

        async def rejected_into_the_dlq() -> bool:
            message = await queue.get(no_ack=False, fail=False)
            if message is not None:
                await message.reject(requeue=True)
            return await kit.ready_count(kit.dlq) > 0

        await wait_for(rejected_into_the_dlq, what="the broker to dead-letter it")


TIMER_DELAY = timedelta(seconds=5)  # longer than a replay may take to reach the work queue


async def _schedule(kit: DlqKit, delay: timedelta) -> Sent:
    """Send a PlaceOrder through the delay levels, as a saga timer or a delayed retry travels."""
    contract = place_order("x")
    wire = default_registry().encode(Envelope(contract))
    connection = await aio_pika.connect_robust(kit.amqp_url)
    async with connection:
        scheduler = Scheduler(ConfirmedPublisher(connection), Settings())
        await scheduler.schedule(from_wire(wire, "tests"), kit.queue, delay)
    return Sent(wire.message_id, str(contract.order_id), PLACE)


async def _replayed_straight_to_the_work_queue(kit: DlqKit) -> dict[str, Any]:
    result = await kit.cli("replay", kit.dlq, "--yes")
    assert result.returncode == 0, result.stderr
    # through the delay levels again it would take TIMER_DELAY to arrive
    await wait_for(
        lambda: _at_least(kit, kit.queue, 1),
        timeout=TIMER_DELAY.total_seconds() / 2,
        what="the replayed copy in the work queue, not in a delay level",
    )
    return await _peek_work_queue(kit)


async def test_a_timer_dead_lettered_by_the_runtime_shows_its_queue_and_replays_to_it(
    kit: DlqKit,
) -> None:
    # given a message that reached its queue through the delay levels and failed there
    await kit.start_switch()
    sent = await _schedule(kit, TIMER_DELAY)
    await wait_for(
        lambda: _at_least(kit, kit.dlq, 1), timeout=30, what="the timer to be dead-lettered"
    )
    kit.stop_all()

    # then the dead letter names its work queue as the way back, not a delay level
    [shown] = json.loads((await kit.cli("show", kit.dlq, "--json")).stdout)
    assert shown["message_id"] == sent.message_id
    assert shown["reason"] == "exhausted"
    assert shown["original_queue"] == kit.queue
    assert shown["original_exchange"] == ""
    assert shown["original_routing_key"] == kit.queue

    # and a replay puts it straight into the work queue
    headers = await _replayed_straight_to_the_work_queue(kit)
    assert headers["replay-count"] == 1
    kit.flip()
    await kit.start_switch()
    await wait_for(lambda: kit.effects(sent.order_id), what="the replayed timer")
    assert await kit.effects(sent.order_id) == 1


async def test_a_timer_the_broker_dead_letters_shows_its_real_reason_and_replays_to_its_queue(
    kit: DlqKit,
) -> None:
    # given a message that waited in the delay levels, then hit the delivery limit in its queue
    worker = await kit.start_switch(WARREN_DELIVERY_LIMIT="1")
    worker.kill()
    sent = await _schedule(kit, TIMER_DELAY)
    await wait_for(lambda: _at_least(kit, kit.queue, 1), timeout=30, what="the timer to arrive")
    await _reject_until_dead_lettered(kit)

    # then its reason is the delivery limit, not the delay levels' expiry, and its queue is its own
    [shown] = json.loads((await kit.cli("show", kit.dlq, "--json")).stdout)
    assert shown["message_id"] == sent.message_id
    assert shown["reason"] == "crash-loop"
    assert shown["original_queue"] == kit.queue
    assert shown["original_routing_key"] == kit.queue
    listed = (await kit.cli("list")).stdout
    assert "expired" not in listed, listed

    # and a replay puts it straight into the work queue, without the broker's headers
    headers = await _replayed_straight_to_the_work_queue(kit)
    assert not {"x-death", "x-first-death-reason", "x-first-death-queue"} & headers.keys()
    kit.flip()
    await kit.start_switch(WARREN_DELIVERY_LIMIT="1")
    await wait_for(lambda: kit.effects(sent.order_id), what="the replayed timer")
    assert await kit.effects(sent.order_id) == 1
    assert await kit.ready_count(kit.dlq) == 0
