"""The autoscaler follows a real backlog to its maximum and back, losing and repeating nothing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from config.settings import Settings
from tests.support.harness import wait_for
from tests.support.probe_kit import ProbeKit
from workers.ops.autoscale import Autoscaler, ScalePolicy
from workers.ops.management import Management
from workers.ops.pool import LocalPool
from workers.ops.readiness import consumer_probe

BACKLOG = 2000
POLICY = ScalePolicy(
    target_per_worker=100, min_replicas=1, max_replicas=4, stabilisation_s=8, interval_s=1
)


async def queue_stats(management: Management, vhost: str, queue: str) -> dict[str, int]:
    body = await management.on(vhost).queue(queue) or {}
    return {
        "consumers": int(body.get("consumers") or 0),
        "backlog": int(body.get("messages") or 0),
        "redelivered": int((body.get("message_stats") or {}).get("redeliver") or 0),
    }


async def test_a_backlog_of_2000_scales_to_4_workers_and_back_to_1_with_nothing_lost_or_repeated(
    amqp_url: str,
    test_settings: Settings,
    rabbit_vhost: str,
    management: Management,
    make_database_url,
    tmp_path: Path,
) -> None:
    kit = ProbeKit(amqp_url, make_database_url("postgres"), tmp_path, "autoscaled")
    env = os.environ | kit.env(WARREN_PREFETCH="1")
    probe = consumer_probe(test_settings, kit.queue, "scripted-worker")
    pool = LocalPool("scripted", ["tests.support.probe"], probe=probe, env=env, drain_timeout_s=30)
    scaler = Autoscaler(test_settings, {"scripted": pool}, POLICY, queues={"scripted": kit.queue})
    stop = asyncio.Event()
    running = asyncio.create_task(scaler.run(stop))
    peak = 0

    async def consumers_are(count: int) -> bool:
        nonlocal peak
        seen = (await queue_stats(management, rabbit_vhost, kit.queue))["consumers"]
        peak = max(peak, seen)
        return seen == count

    try:
        await wait_for(lambda: consumers_are(1), timeout=60, what="the minimum of one worker")
        await kit.place_many("slow-15", BACKLOG)
        await wait_for(lambda: consumers_are(4), timeout=90, what="four workers on the queue")
        await wait_for(
            lambda: _effects_reach(kit, BACKLOG), timeout=120, what="the backlog to drain"
        )
        await wait_for(lambda: consumers_are(1), timeout=90, what="the return to one worker")
    finally:
        stop.set()
        await running
        await pool.close()
    assert peak == 4
    assert await kit.effects() == BACKLOG
    assert await kit.distinct_effects() == BACKLOG
    stats = await queue_stats(management, rabbit_vhost, kit.queue)
    assert stats["redelivered"] == 0, "a scale-down returned messages to the queue"
    assert stats["backlog"] == 0


async def _effects_reach(kit: ProbeKit, count: int) -> bool:
    return await kit.effects() >= count
