"""`warren topology apply` declares the plan; `warren topology check` explains every drift."""

from __future__ import annotations

import subprocess
import sys

import aio_pika
import httpx

from config.settings import Settings
from contracts.orders import PlaceOrder
from contracts.payments import CapturePayment
from contracts.shipping import ShipmentArranged
from contracts.topology import (
    UNROUTED_EXCHANGE,
    UNROUTED_POLICY,
    UNROUTED_QUEUE,
    event_exchange_pattern,
    exchange_for,
)
from tests.support.harness import REPO
from tests.support.roles import consumer_of


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

    saga = consumer_of(PlaceOrder).queue
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
    payments = consumer_of(CapturePayment).queue
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


async def test_an_event_exchange_without_alternate_exchange_is_kept_and_a_policy_fixes_it(
    test_settings: Settings, management: httpx.AsyncClient, rabbit_vhost: str
) -> None:
    # given an event exchange declared before events were parked: without alternate exchange
    events = exchange_for(ShipmentArranged)
    connection = await aio_pika.connect(test_settings.amqp_url())
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(events)
        await channel.declare_exchange(events, aio_pika.ExchangeType.TOPIC, durable=True)

    # when the topology is applied, then it keeps the exchange rather than failing
    applied = warren(test_settings, "apply")
    assert applied.returncode == 0, applied.stderr
    # and the check explains what that costs and how to fix it without deleting anything
    drifted = warren(test_settings, "check")
    assert drifted.returncode == 1
    assert f"exchange {events}: has no alternate exchange" in drifted.stderr
    assert "rabbitmqctl set_policy" in drifted.stderr

    # when the operator sets the policy the check proposes
    definition = {
        "pattern": event_exchange_pattern(),
        "definition": {"alternate-exchange": UNROUTED_EXCHANGE},
        "apply-to": "exchanges",
    }
    await management.on(rabbit_vhost).set_policy(UNROUTED_POLICY, definition)
    try:
        # then the check is satisfied and an event with no subscriber is parked, not returned
        clean = warren(test_settings, "check")
        assert clean.returncode == 0, clean.stderr
        connection = await aio_pika.connect(test_settings.amqp_url())
        async with connection:
            channel = await connection.channel(on_return_raises=True)
            exchange = await channel.get_exchange(events)
            message = aio_pika.Message(b"{}", message_id="parked-by-policy")
            await exchange.publish(message, "shipping.NobodyListens", mandatory=True)
            parked = await (await channel.get_queue(UNROUTED_QUEUE)).get(fail=False)
            assert parked is not None and parked.message_id == "parked-by-policy"
            await parked.ack()
    finally:
        await management.on(rabbit_vhost).delete_policy(UNROUTED_POLICY)
