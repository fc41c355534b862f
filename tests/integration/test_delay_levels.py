"""Broker-side delay levels: any delay, in any order, arrives on time."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta

import aio_pika

from config.settings import Settings
from contracts.topology import Subscription, delay_units
from outbox.amqp import ConfirmedPublisher, amqp_message
from workers.runtime.delay import Scheduler
from workers.runtime.topology import apply_plan, build_plan

COUNT = 200
# Transit beyond the rounding: publish, a quorum commit per dead-letter hop, delivery. Most messages
# take a few milliseconds; a stall of the broker's disk on a busy two-core machine holds back the
# few messages expiring during it (worst seen: 0.5 s), so the bound on every message is looser
# than the bound on the median, which would catch a systematic delay.
MEDIAN_TRANSIT_S = 0.25
WORST_TRANSIT_S = 1.5


async def test_200_random_delays_arrive_no_earlier_than_scheduled_and_about_one_unit_late_at_most(
    test_settings: Settings,
) -> None:
    target = Subscription("delayprobe", "arrivals", ())
    connection = await aio_pika.connect_robust(test_settings.amqp_url())
    async with connection:
        await apply_plan(connection, build_plan(test_settings, [target]))
        scheduler = Scheduler(ConfirmedPublisher(connection), test_settings)
        unit_s = test_settings.delay_unit_ms / 1000
        delays = [random.uniform(0.1, 20.0) for _ in range(COUNT)]
        due: dict[str, tuple[float, float]] = {}
        arrivals: dict[str, float] = {}
        done = asyncio.Event()

        async def arrived(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            arrivals[str(message.message_id)] = time.monotonic()
            await message.ack()
            if len(arrivals) == COUNT:
                done.set()

        channel = await connection.channel()
        await channel.set_qos(prefetch_count=COUNT)
        await (await channel.get_queue(target.queue)).consume(arrived)

        async def schedule(index: int, delay: float) -> None:
            message = amqp_message(
                body=b"{}",
                type="test.Delayed.v1",
                message_id=str(index),
                correlation_id=None,
                timestamp=None,
                headers={},
                app_id="tests",
            )
            asked = time.monotonic()
            await scheduler.schedule(message, target.queue, timedelta(seconds=delay))
            due[str(index)] = (asked + delay, time.monotonic() + delay)

        await asyncio.gather(*(schedule(i, d) for i, d in enumerate(delays)))
        await asyncio.wait_for(done.wait(), timeout=20.0 + 10)

    beyond_rounding = []
    for key, (earliest, confirmed_due) in due.items():
        rounded = delay_units(int(delays[int(key)] * 1000), test_settings.delay_unit_ms) * unit_s
        late = arrivals[key] - confirmed_due
        beyond_rounding.append(arrivals[key] - (confirmed_due - delays[int(key)] + rounded))
        assert arrivals[key] >= earliest, (
            f"message {key} arrived {earliest - arrivals[key]:.3f}s early"
        )
        assert late <= unit_s + WORST_TRANSIT_S, (
            f"message {key} (delay {delays[int(key)]:.3f}s, {rounded:.1f}s in units) "
            f"came {late:.3f}s late"
        )
    beyond_rounding.sort()
    median = beyond_rounding[COUNT // 2]
    print(
        f"transit beyond rounding: median {median * 1000:.1f} ms, "
        f"max {beyond_rounding[-1] * 1000:.1f} ms"
    )
    assert median <= MEDIAN_TRANSIT_S, (
        f"the median message came {median:.3f}s after its rounded delay"
    )
