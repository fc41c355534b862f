"""FastStream is the consuming edge: it receives deliveries and hands each to the runtime.

FastStream owns the connection, the consumers and their prefetch; the runtime (`Consumer`) owns
every decision: decode, inbox, batching, retries, dead letters, confirm before ack. So every
subscriber acks manually, takes the undecoded body alone (a body that fails validation must
still reach the runtime to be dead-lettered) and reads the raw aio-pika message from
FastStream's context (a parameter would be resolved through a thread per message). See
`docs/decisions.md`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from contextlib import suppress
from functools import partial
from typing import TYPE_CHECKING, Any

from aio_pika.abc import AbstractIncomingMessage
from faststream import AckPolicy, StreamMessage
from faststream.rabbit import (
    Channel,
    ExchangeType,
    RabbitBroker,
    RabbitExchange,
    RabbitQueue,
    RabbitRouter,
)
from loguru import logger
from yarl import URL

from config.settings import Settings
from contracts.base import Message
from contracts.registry import Registry, default_registry
from contracts.topology import Subscription, exchange_for, pause_marker, routing_key_for
from outbox.amqp import connection_name
from outbox.failover import FailoverConnection

if TYPE_CHECKING:
    from workers.runtime.consumer import Consumer
    from workers.runtime.service import ServiceSpec

__all__ = [
    "PauseMarker",
    "bound_contracts",
    "edge_broker",
    "mark_pauses",
    "router_for",
    "start_edge",
    "stop_edge",
]

# How long showing or removing a pause marker may take before it is given up.
MARKER_TIMEOUT_S = 5.0

Deliver = Callable[[AbstractIncomingMessage], Awaitable[None]]

# FastStream's own lines go through stdlib logging into loguru (logs.py); its per-message lines
# are DEBUG so that they cost nothing, its errors still reach the log.
EDGE_LOGGER = logging.getLogger("warren.edge")


def bound_contracts(
    subscription: Subscription, registry: Registry | None = None
) -> list[type[Message]]:
    """The newest version of every contract bound to a subscription's queue, in its order."""
    registry = registry or default_registry()
    return [registry.newest(name) for name in subscription.messages]


def exchange_of(model: type[Message]) -> RabbitExchange:
    """The topic exchange a contract is published on, never declared by FastStream."""
    return RabbitExchange(exchange_for(model), type=ExchangeType.TOPIC, durable=True, declare=False)


def work_queue_of(subscription: Subscription, model: type[Message]) -> RabbitQueue:
    """The work queue as FastStream sees one binding of it: passive, bindings left to Warren."""
    return RabbitQueue(subscription.queue, declare=False, routing_key=routing_key_for(model))


async def _undecoded(message: StreamMessage[Any]) -> bytes:
    """The body untouched: FastStream would parse JSON, and a body it cannot parse must still
    reach the runtime to be dead-lettered."""
    return message.body


def _deliver_through(router: RabbitRouter, deliver: Deliver) -> Callable[[bytes], Awaitable[None]]:
    async def on_delivery(_body: bytes) -> None:
        """Hand the raw delivery to the runtime and wait until it is settled (FastStream passes
        the undecoded body; the runtime reads the whole delivery)."""
        # The router's context is the broker's once the router is included.
        message = router.config.context.get_local("message")
        await deliver(message.raw_message)

    return on_delivery


def subscribe(
    router: RabbitRouter,
    subscription: Subscription,
    deliver: Deliver,
    prefetch: int,
    registry: Registry | None = None,
) -> None:
    """One manual-ack subscriber per binding of the work queue, all on one channel.

    A FastStream subscriber knows one exchange and one routing key; Warren's queue is bound to
    several, so each binding is a consumer of the same queue. They share one channel whose
    per-consumer prefetch divides the queue's prefetch among them.
    """
    contracts = bound_contracts(subscription, registry)
    channel = Channel(prefetch_count=math.ceil(prefetch / max(1, len(contracts))))
    for model in contracts:
        router.subscriber(
            work_queue_of(subscription, model),
            exchange_of(model),
            channel=channel,
            ack_policy=AckPolicy.MANUAL,
            decoder=_undecoded,
            title=f"{subscription.queue}:{model.NAME}",
            description=(
                f"The {subscription.service} service consumes {model.NAME} from the exchange "
                f"`{exchange_for(model)}` by routing key `{routing_key_for(model)}`."
            ),
        )(_deliver_through(router, deliver))


def router_for(spec: ServiceSpec, consumer: Consumer) -> RabbitRouter:
    """The FastStream router of one service: its subscription's subscribers feed `consumer`."""
    router = RabbitRouter()
    subscribe(router, spec.subscription, consumer.deliver, consumer.prefetch, spec.registry)
    return router


def edge_broker(settings: Settings, role: str, url: str | None = None) -> RabbitBroker:
    """A broker named after this process's role; Warren stamps its own app_id and ids.

    Its connection fails over between the broker nodes like every other (outbox/failover.py).
    """
    nodes = [url] if url is not None else settings.amqp_urls()
    # aiormq names the connection after the URL's `name` (how the management UI shows it).
    named = [str(URL(node).update_query(name=connection_name(role))) for node in nodes]
    broker = RabbitBroker(
        named[0],
        # a first node that is down must not stop the start: the connection tries the next
        fail_fast=False,
        reconnect_interval=settings.broker_reconnect_interval_s,
        app_id=role,
        graceful_timeout=settings.drain_timeout_s,
        ack_policy=AckPolicy.MANUAL,
        # the subscribers take the body alone: no dependency injection to solve per delivery
        apply_types=False,
        default_channel=Channel(prefetch_count=settings.prefetch, on_return_raises=True),
        logger=EDGE_LOGGER,
        log_level=logging.DEBUG,
    )
    # FastStream hands these to aio-pika's connect_robust, which builds the connection class.
    broker._connection_kwargs["connection_class"] = partial(
        FailoverConnection, nodes=named, role=f"{role}-edge"
    )
    return broker


async def start_edge(broker: RabbitBroker, consumer: Consumer) -> None:
    """Start consuming (supervisors see it as a consumer on the queue, not from this log line)."""
    await broker.start()
    logger.info("consuming {} with prefetch {}", consumer.queue, consumer.prefetch)


async def stop_edge(broker: RabbitBroker, consumer: Consumer, timeout: float) -> None:
    """Stop every subscriber, drain the runtime, then close the broker (in that order)."""
    for subscriber in broker.subscribers:
        await subscriber.stop()
    await consumer.drain(timeout)
    await broker.stop()


class PauseMarker:
    """Shows a paused consumer on the broker: `<queue>.paused.<process>` exists while it lasts.

    A paused consumer keeps its consumers and holds what it has (the prefetch bounds what it
    takes): cancelling them would make the broker give back the deliveries in flight to them,
    counted against the delivery-limit. So the pause is shown by an exclusive, auto-delete queue
    of its own, seen by `warren status` and in the management UI, gone with the process.
    Showing it never delays the consumer: it is done by a task of its own, on a channel of its
    own (a refused declaration closes its channel, not the consuming one).
    """

    def __init__(self, broker: RabbitBroker, queue: str, process: str) -> None:
        self.broker, self.name = broker, pause_marker(queue, process)
        self._wanted = self._shown = False
        self._channel: Any = None
        self._task: asyncio.Task[None] | None = None

    def show(self, paused: bool) -> None:
        """Make the marker exist (or not) soon; the newest wish wins."""
        self._wanted = paused
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._follow(), name=f"pause-marker {self.name}")

    async def _follow(self) -> None:
        while self._shown != self._wanted:
            wanted = self._wanted
            try:
                async with asyncio.timeout(MARKER_TIMEOUT_S):
                    await (self._declare() if wanted else self._delete())
            except Exception as exc:  # the broker is away too: the metric and the log still say it
                logger.info(
                    "pause marker {} not {}: {}",
                    self.name,
                    "declared" if wanted else "deleted",
                    type(exc).__name__,
                )
                if not wanted:
                    self._shown = False  # the channel is gone, its queue with the connection
                return
            self._shown = wanted

    async def _declare(self) -> None:
        connection: Any = self.broker._connection
        if connection is None:
            raise ConnectionError("not connected")
        self._channel = await connection.channel()
        await self._channel.declare_queue(self.name, exclusive=True, auto_delete=True)

    async def _delete(self) -> None:
        channel, self._channel = self._channel, None
        if channel is None or channel.is_closed:
            return
        try:
            await channel.queue_delete(self.name)
        finally:
            await channel.close()

    async def close(self) -> None:
        """Remove the marker (a worker stopping while paused)."""
        self.show(False)
        if self._task is not None:
            with suppress(Exception):
                await self._task


def mark_pauses(broker: RabbitBroker, consumer: Consumer, role: str) -> PauseMarker:
    """Show each pause of `consumer` on the broker, under this process's connection name."""
    marker = PauseMarker(broker, consumer.queue, connection_name(role))
    consumer.pause.on_change = marker.show
    return marker
