"""One "service" of the raw baseline: consume, publish what follows with confirms, then ack.

Run as `python -m benchmarks.baseline_worker ROLE`; the broker URL and prefetch come from
`WARREN_BENCH_AMQP_URL` and `WARREN_BENCH_PREFETCH`. SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from benchmarks.chain import EXCHANGE, ROLES, effects, queue_name
from outbox.amqp import connection_name

# What handling a delivery publishes, from its `type` and its decoded body: (key, message) pairs.
Effects = Callable[[str, dict[str, Any]], list[tuple[str, aio_pika.Message]]]


def handler(
    exchange: AbstractExchange, effects: Effects
) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
    """The consumer callback: the forward publishes are confirmed before the ack."""

    async def on_message(incoming: AbstractIncomingMessage) -> None:
        outgoing = effects(incoming.type or "", json.loads(incoming.body))
        await asyncio.gather(
            *(exchange.publish(m, routing_key=key, mandatory=True) for key, m in outgoing)
        )
        await incoming.ack()

    return on_message


async def serve(
    role: str, queue_name: str, exchange_name: str, effects: Effects, url: str, prefetch: int
) -> None:
    """Consume `queue_name` as `role` until SIGTERM or SIGINT, publishing to `exchange_name`."""
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    name = connection_name(role)  # the supervisor's probe looks for it
    connection = await aio_pika.connect(url, client_properties={"connection_name": name})
    publishing = await connection.channel(publisher_confirms=True, on_return_raises=True)
    exchange = await publishing.get_exchange(exchange_name, ensure=False)
    consuming = await connection.channel()
    await consuming.set_qos(prefetch_count=prefetch)
    queue = await consuming.get_queue(queue_name, ensure=False)
    await queue.consume(handler(exchange, effects), no_ack=False)
    await stop.wait()
    await connection.close()


def prefetch_of_environment() -> int:
    """The prefetch the bench asked for (`WARREN_BENCH_PREFETCH`), Warren's default otherwise."""
    return int(os.environ.get("WARREN_BENCH_PREFETCH", "32"))


def _chain_effects(step: str, body: dict[str, Any]) -> list[tuple[str, aio_pika.Message]]:
    return effects(step, body["order_id"])


def main() -> None:
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role not in ROLES:
        raise SystemExit(f"usage: python -m benchmarks.baseline_worker {{{','.join(ROLES)}}}")
    url = os.environ["WARREN_BENCH_AMQP_URL"]
    asyncio.run(
        serve(
            f"baseline-{role}",
            queue_name(role),
            EXCHANGE,
            _chain_effects,
            url,
            prefetch_of_environment(),
        )
    )


if __name__ == "__main__":
    main()
