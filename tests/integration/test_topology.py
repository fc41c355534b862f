"""`warren topology apply` declares the plan; `warren topology check` explains every drift."""

from __future__ import annotations

import subprocess
import sys

import aio_pika

from config.settings import Settings
from contracts.topology import work_queue
from tests.support.harness import REPO


def warren(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"WARREN_ENV": "test", "WARREN_BROKER_URL": settings.amqp_url(), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "topology", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _redeclare(settings: Settings, queue: str, arguments: dict[str, object]) -> None:
    connection = await aio_pika.connect(settings.amqp_url())
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue)
        await channel.declare_queue(queue, durable=True, arguments=arguments)


async def _delete(settings: Settings, queue: str) -> None:
    connection = await aio_pika.connect(settings.amqp_url())
    async with connection:
        await (await connection.channel()).queue_delete(queue)


async def test_check_passes_after_apply_and_explains_a_missing_dead_letter_exchange(
    test_settings: Settings,
) -> None:
    applied = warren(test_settings, "apply")
    assert applied.returncode == 0, applied.stderr
    clean = warren(test_settings, "check")
    assert clean.returncode == 0, clean.stderr
    assert "matches the plan" in clean.stdout

    saga = work_queue("orders", "saga")
    await _redeclare(test_settings, saga, {"x-queue-type": "quorum", "x-delivery-limit": 10})
    try:
        drifted = warren(test_settings, "check")
        assert drifted.returncode == 1
        assert f"queue {saga}: has no dead-letter exchange" in drifted.stderr
        assert "fix:" in drifted.stderr
    finally:
        await _delete(test_settings, saga)


async def test_check_explains_a_delivery_limit_lower_than_the_retry_budget(
    test_settings: Settings,
) -> None:
    assert warren(test_settings, "apply").returncode == 0
    payments = work_queue("payments", "payments")
    dlq_args = {
        "x-dead-letter-exchange": "warren.dlx",
        "x-dead-letter-routing-key": f"{payments}.dlq",
    }
    await _redeclare(
        test_settings, payments, {"x-queue-type": "quorum", "x-delivery-limit": 2, **dlq_args}
    )
    try:
        drifted = warren(test_settings, "check")
        assert drifted.returncode == 1
        assert (
            f"queue {payments}: has delivery-limit 2, lower than the retry budget" in drifted.stderr
        )
    finally:
        await _delete(test_settings, payments)
