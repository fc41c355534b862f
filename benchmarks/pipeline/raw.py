"""The raw twin of the pipeline: the same hops in plain aio-pika, no database, no runtime.

Each step consumes its quorum queue (the runtime's queue arguments), publishes the next message
persistent and `mandatory` with publisher confirms, and acks once the broker confirmed it; the
prefetch is the runtime's. Bodies, properties and headers are those of the runtime's messages.
Run one step as `python -m benchmarks.pipeline.raw STEP` (`WARREN_BENCH_AMQP_URL`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

from benchmarks.baseline_worker import prefetch_of_environment, serve
from benchmarks.chain import raw_message
from benchmarks.pipeline.contracts import CONTRACTS, PAYLOAD, STEPS
from config.settings import Settings
from workers.runtime.topology import work_queue_arguments

EXCHANGE = "bench.pipeline"
ROLES = tuple(f"step{number}" for number in range(1, len(STEPS) + 1))
DONE = "done"  # the queue of the finishing message, read by the driver
# The role that handles each message type, and the role the next message goes to.
HANDLER_OF = {m.type_name(): role for m, role in zip(CONTRACTS, (*ROLES, DONE), strict=True)}
NEXT = {model.type_name(): after.type_name() for model, after in itertools.pairwise(CONTRACTS)}


def queue_name(role: str) -> str:
    """The quorum queue of one raw step (or of the finishing messages)."""
    return f"bench.pipeline.{role}"


def hop(type_name: str, pipeline_id: str) -> tuple[str, aio_pika.Message]:
    """The message `type_name` of a pipeline and the routing key of the step that handles it."""
    body = {"pipeline_id": pipeline_id, "payload": PAYLOAD}
    return HANDLER_OF[type_name], raw_message(type_name, body, pipeline_id)


def effects(type_name: str, body: dict[str, Any]) -> list[tuple[str, aio_pika.Message]]:
    """What a raw step publishes on handling `type_name`: the next hop."""
    return [hop(NEXT[type_name], body["pipeline_id"])]


async def declare(channel: AbstractChannel, settings: Settings) -> None:
    """The exchange and one queue per step and for the finishing messages, with the runtime's
    work-queue arguments."""
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    for role in (*ROLES, DONE):
        name = queue_name(role)
        queue = await channel.declare_queue(
            name, durable=True, arguments=work_queue_arguments(settings, name)
        )
        await queue.bind(exchange, routing_key=role)


def main() -> None:
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role not in ROLES:
        raise SystemExit(f"usage: python -m benchmarks.pipeline.raw {{{','.join(ROLES)}}}")
    url = os.environ["WARREN_BENCH_AMQP_URL"]
    asyncio.run(
        serve(f"raw-{role}", queue_name(role), EXCHANGE, effects, url, prefetch_of_environment())
    )


if __name__ == "__main__":
    main()
