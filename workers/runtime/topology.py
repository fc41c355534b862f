"""The broker topology as one plan, derived from `contracts.topology` and the settings.

Work queues are quorum queues with an explicit delivery-limit and a dead-letter exchange, so a
message that crashes its worker in a loop ends in `Q.dlq`. Delay level `L` is a queue with TTL
`unit * 2**L` that dead-letters into level `L-1`; the routing key carries the delay bits.
Event exchanges park what no queue takes in `warren.unrouted` through their alternate exchange.

See `docs/architecture.md`, "Topology".
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.exceptions import ChannelPreconditionFailed
from loguru import logger

from config.settings import Settings
from contracts import topology as names
from contracts.registry import Registry, default_registry
from contracts.topology import Subscription
from workers.runtime import discovery


class TopologyConflict(RuntimeError):
    """The broker holds a queue or exchange that contradicts the plan."""


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    name: str
    type: str = "topic"
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BindingSpec:
    source: str
    destination: str
    routing_key: str
    destination_type: str = "queue"


@dataclass(frozen=True, slots=True)
class TopologyPlan:
    exchanges: tuple[ExchangeSpec, ...]
    queues: tuple[QueueSpec, ...]
    bindings: tuple[BindingSpec, ...]
    work_queues: tuple[str, ...]


def work_queue_arguments(settings: Settings, queue: str) -> dict[str, Any]:
    """Arguments of a work queue: type, delivery-limit and dead-lettering to `Q.dlq`."""
    args: dict[str, Any] = {
        "x-queue-type": settings.queue_type,
        "x-dead-letter-exchange": names.DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": names.dead_letter_queue(queue),
    }
    if settings.queue_type == "quorum":
        args |= replication(settings) | {
            "x-delivery-limit": settings.delivery_limit,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
    return args


def replication(settings: Settings) -> dict[str, Any]:
    """How many nodes a new quorum queue is replicated on, when the settings say (else the
    broker's default)."""
    size = settings.quorum_group_size()
    return {} if size is None else {"x-quorum-initial-group-size": size}


def quorum_arguments(settings: Settings, queue_type: str) -> dict[str, Any]:
    """The type of a queue, with its replication when it is a quorum queue."""
    return {"x-queue-type": queue_type} | (replication(settings) if queue_type == "quorum" else {})


def delay_queue_arguments(settings: Settings, level: int) -> dict[str, Any]:
    """Arguments of delay level `level`: its TTL and where it expires to."""
    target = names.delay_exchange(level - 1) if level else names.DELAY_DELIVERY_EXCHANGE
    return quorum_arguments(settings, "quorum") | {
        "x-message-ttl": settings.delay_unit_ms * 2**level,
        "x-dead-letter-exchange": target,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def unrouted_queue_arguments(settings: Settings) -> dict[str, Any]:
    """Arguments of the parking queue: bounded, and refusing (not dropping) when full."""
    return quorum_arguments(settings, settings.queue_type) | {
        "x-max-length": settings.unrouted_max_length,
        "x-overflow": "reject-publish",
    }


def exchange_spec(name: str) -> ExchangeSpec:
    """A contract exchange; an event exchange sends what no queue takes to the parking queue."""
    if names.is_event_exchange(name):
        return ExchangeSpec(name, arguments={"alternate-exchange": names.UNROUTED_EXCHANGE})
    return ExchangeSpec(name)


def build_plan(
    settings: Settings,
    subscriptions: Iterable[Subscription] | None = None,
    registry: Registry | None = None,
) -> TopologyPlan:
    """Every exchange, queue and binding Warren needs for these subscriptions.

    `registry` holds the contracts they name (default: every contract of the repository).
    """
    subs = tuple(discovery.subscriptions() if subscriptions is None else subscriptions)
    registry = registry or default_registry()
    exchanges = {names.exchange_for(m) for m in registry}
    queues = [QueueSpec(names.UNROUTED_QUEUE, unrouted_queue_arguments(settings))]
    bindings = [BindingSpec(names.UNROUTED_EXCHANGE, names.UNROUTED_QUEUE, "")]
    for sub in subs:
        dlq = names.dead_letter_queue(sub.queue)
        queues += [QueueSpec(sub.queue, work_queue_arguments(settings, sub.queue))]
        queues += [QueueSpec(dlq, quorum_arguments(settings, settings.queue_type))]
        bindings.append(BindingSpec(names.DEAD_LETTER_EXCHANGE, dlq, dlq))
        bindings.append(
            BindingSpec(
                names.DELAY_DELIVERY_EXCHANGE, sub.queue, names.delay_delivery_binding(sub.queue)
            )
        )
        for message_name in sub.messages:
            model = registry.newest(message_name)
            exchanges.add(names.exchange_for(model))
            bindings.append(
                BindingSpec(names.exchange_for(model), sub.queue, names.routing_key_for(model))
            )
    delay_exchanges, delay_queues, delay_bindings = _delay_levels(settings)
    return TopologyPlan(
        exchanges=(
            *(exchange_spec(name) for name in sorted(exchanges)),
            ExchangeSpec(names.DEAD_LETTER_EXCHANGE, "direct"),
            ExchangeSpec(names.UNROUTED_EXCHANGE, "fanout"),
            *delay_exchanges,
        ),
        queues=(*queues, *delay_queues),
        bindings=(*bindings, *delay_bindings),
        work_queues=tuple(sub.queue for sub in subs),
    )


def _delay_levels(
    settings: Settings,
) -> tuple[list[ExchangeSpec], list[QueueSpec], list[BindingSpec]]:
    levels = settings.delay_levels
    exchanges = [ExchangeSpec(names.DELAY_DELIVERY_EXCHANGE)]
    queues, bindings = [], []
    for level in range(levels):
        exchange = names.delay_exchange(level)
        below = names.delay_exchange(level - 1) if level else names.DELAY_DELIVERY_EXCHANGE
        bit_set, bit_clear = names.delay_level_bindings(level, levels)
        exchanges.append(ExchangeSpec(exchange))
        queues.append(QueueSpec(names.delay_queue(level), delay_queue_arguments(settings, level)))
        bindings.append(BindingSpec(exchange, names.delay_queue(level), bit_set))
        bindings.append(BindingSpec(exchange, below, bit_clear, destination_type="exchange"))
    return exchanges, queues, bindings


def only_queues(plan: TopologyPlan, queues: Collection[str]) -> TopologyPlan:
    """The part of a plan a least-privileged service may declare: its queues and their bindings."""
    return TopologyPlan(
        exchanges=(),
        queues=tuple(q for q in plan.queues if q.name in queues),
        bindings=tuple(b for b in plan.bindings if b.destination in queues),
        work_queues=tuple(q for q in plan.work_queues if q in queues),
    )


async def _declare_exchange(
    connection: AbstractConnection, channel: AbstractChannel, spec: ExchangeSpec
) -> bool:
    """Declare one exchange; False if it already exists without the plan's arguments.

    RabbitMQ refuses to add an argument to an existing exchange. An event exchange from before
    its alternate exchange keeps working (a policy can add one), so only a worse clash raises.
    """
    kind = ExchangeType(spec.type)
    try:
        await channel.declare_exchange(spec.name, kind, durable=True, arguments=spec.arguments)
        return True
    except ChannelPreconditionFailed as exc:
        if not spec.arguments:
            raise TopologyConflict(_exchange_conflict(spec, exc)) from exc
        retry = await connection.channel()
    try:
        await retry.declare_exchange(spec.name, kind, durable=True)
    except ChannelPreconditionFailed as exc:
        raise TopologyConflict(_exchange_conflict(spec, exc)) from exc
    finally:
        await retry.close()
    logger.info(
        "exchange {} exists without {}; unless a policy sets it, see `warren topology check`",
        spec.name,
        spec.arguments,
    )
    return False


def _exchange_conflict(spec: ExchangeSpec, exc: Exception) -> str:
    return (
        f"exchange {spec.name} exists with another type or other arguments than the plan's "
        f"({exc}); `warren topology check` shows how it differs"
    )


async def apply_plan(
    connection: AbstractConnection, plan: TopologyPlan, *, tolerate: Collection[str] = ()
) -> list[str]:
    """Declare the plan (idempotent); the names of conflicting queues and exchanges it tolerated.

    A queue that exists with other arguments raises `TopologyConflict`, unless it is named in
    `tolerate`: a worker tolerates other services' queues, which are not its to fix. An exchange
    that exists without the plan's arguments is tolerated (see `_declare_exchange`).
    """
    channel = await connection.channel()
    tolerated = []
    for spec in plan.exchanges:
        if not await _declare_exchange(connection, channel, spec):
            tolerated.append(spec.name)
            channel = await connection.channel()
    for queue in plan.queues:
        try:
            await channel.declare_queue(queue.name, durable=True, arguments=queue.arguments)
        except ChannelPreconditionFailed as exc:
            if queue.name not in tolerate:
                raise TopologyConflict(
                    f"queue {queue.name} exists with other arguments than the plan's "
                    f"({exc}); `warren topology check` shows how it differs"
                ) from exc
            logger.warning(
                "queue {} differs from the plan; see `warren topology check`", queue.name
            )
            tolerated.append(queue.name)
            channel = await connection.channel()
    for binding in plan.bindings:
        if binding.destination_type == "exchange":
            target = await channel.get_exchange(binding.destination, ensure=False)
            await target.bind(binding.source, binding.routing_key)
        else:
            bound = await channel.get_queue(binding.destination, ensure=False)
            await bound.bind(binding.source, binding.routing_key)
    await channel.close()
    return tolerated
