"""Every exchange, queue, routing key and delay name, derived by functions.

Names are never typed by hand anywhere else: a consumer, the relay, the ops tools and the
AsyncAPI document all ask this module.

See `docs/architecture.md`, "Topology".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from contracts.base import Command, Message

DEAD_LETTER_EXCHANGE = "warren.dlx"
DELAY_PREFIX = "warren.delay"
DELAY_DELIVERY_EXCHANGE = f"{DELAY_PREFIX}.deliver"
# Events nobody subscribes to yet: the event exchanges' alternate exchange and its parking queue.
UNROUTED_EXCHANGE = "warren.unrouted"
UNROUTED_QUEUE = "warren.unrouted"
UNROUTED_POLICY = "warren-unrouted"
EVENTS_SUFFIX = ".events"


def context_of(message_name: str) -> str:
    """The bounded context that owns a contract: `inventory.ReserveStock` -> `inventory`."""
    return message_name.partition(".")[0]


def command_exchange(context: str) -> str:
    """Commands for a context arrive on its command exchange (topic)."""
    return f"{context}.commands"


def event_exchange(context: str) -> str:
    """A context publishes its events on its event exchange (topic)."""
    return f"{context}{EVENTS_SUFFIX}"


def is_event_exchange(exchange: str) -> bool:
    """Whether `exchange` is a context's event exchange (its unroutable messages are parked)."""
    return exchange.endswith(EVENTS_SUFFIX) and "." not in exchange.removesuffix(EVENTS_SUFFIX)


def event_exchange_pattern() -> str:
    """A regular expression matching every event exchange name, for a broker policy."""
    return rf"^[^.]+{re.escape(EVENTS_SUFFIX)}$"


def exchange_for(message: type[Message]) -> str:
    """Where a message of this contract is published."""
    context = context_of(message.NAME)
    return command_exchange(context) if issubclass(message, Command) else event_exchange(context)


def routing_key_for(message: type[Message]) -> str:
    """The routing key of a contract: its name, so every version reaches the same queues."""
    return message.NAME


def work_queue(service: str, group: str) -> str:
    """The queue of one consuming handler group of one service."""
    return f"{service}.{group}"


def dead_letter_queue(queue: str) -> str:
    """Where messages of `queue` go when they cannot be handled."""
    return f"{queue}.dlq"


PAUSED_INFIX = ".paused."


def pause_marker(queue: str, process: str) -> str:
    """The exclusive queue that exists while `process` holds its deliveries of `queue` paused."""
    return f"{queue}{PAUSED_INFIX}{process}"


def paused_queue(marker: str) -> str | None:
    """The work queue a pause marker names, or None when `marker` is not one."""
    queue, infix, process = marker.partition(PAUSED_INFIX)
    return queue if infix and process else None


def delay_exchange(level: int) -> str:
    """The topic exchange of delay level `level`."""
    return f"{DELAY_PREFIX}.{level:02d}"


def delay_queue(level: int) -> str:
    """The queue of delay level `level`: TTL `unit * 2**level`, dead-letters to `level - 1`."""
    return f"{DELAY_PREFIX}.{level:02d}"


def is_delay(name: str) -> bool:
    """Whether an exchange or queue name is one of the delay levels' (or their delivery)."""
    return name.startswith(f"{DELAY_PREFIX}.")


def delay_units(delay_ms: int, unit_ms: int) -> int:
    """A delay in whole units, rounded up so nothing arrives early."""
    return max(0, -(-delay_ms // unit_ms))


def delay_routing_key(units: int, destination_queue: str, levels: int) -> str:
    """The delay bits, most significant first, then the destination: `0.1.1.orders.saga`."""
    if not 0 <= units < 2**levels:
        raise ValueError(f"a delay of {units} units does not fit in {levels} delay levels")
    bits = ".".join("1" if units >> level & 1 else "0" for level in reversed(range(levels)))
    return f"{bits}.{destination_queue}"


def delay_entry_exchange(units: int) -> str:
    """The first exchange a delayed message enters: the level of its highest set bit."""
    return delay_exchange(units.bit_length() - 1) if units else DELAY_DELIVERY_EXCHANGE


def delay_level_bindings(level: int, levels: int) -> tuple[str, str]:
    """Binding keys at `level`: (bit set -> this level's queue, bit clear -> the next level)."""
    prefix = "*." * (levels - 1 - level)
    return f"{prefix}1.#", f"{prefix}0.#"


def delay_delivery_binding(queue: str) -> str:
    """How the delivery exchange finds a destination queue at the end of the delay levels."""
    return f"#.{queue}"


@dataclass(frozen=True, slots=True)
class Subscription:
    """A work queue and the contracts bound to it."""

    service: str
    group: str
    messages: tuple[str, ...]

    @property
    def queue(self) -> str:
        return work_queue(self.service, self.group)


def suffix_clashes(queues: list[str]) -> list[tuple[str, str]]:
    """Queue pairs where one name is a dot-suffix of the other (they would share delays)."""
    return [(a, b) for a in queues for b in queues if a != b and a.endswith(f".{b}")]


def delay_target(
    delay_ms: int, destination_queue: str, unit_ms: int, levels: int
) -> tuple[str, str]:
    """The exchange and routing key that deliver to `destination_queue` after `delay_ms`."""
    units = delay_units(delay_ms, unit_ms)
    return delay_entry_exchange(units), delay_routing_key(units, destination_queue, levels)
