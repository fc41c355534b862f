"""A publish the broker returned: no queue is bound for it (docs/architecture.md, "Topology").

An event exchange parks what no queue takes in its alternate exchange, so a returned event means
the parking is missing. A returned command is a routing error: its row stays in the outbox and
is tried again with backoff, counted, logged and shown by `warren status`.
"""

from __future__ import annotations

from loguru import logger

from contracts.topology import UNROUTED_EXCHANGE, is_event_exchange
from outbox.metrics import OUTBOX_UNROUTABLE


class Unroutable(Exception):
    """The broker returned a mandatory publish: no queue is bound for its routing key."""

    def __init__(self, exchange: str, routing_key: str) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        super().__init__(f"no queue is bound to exchange {exchange!r} for key {routing_key!r}")


def hint(exchange: str) -> str:
    """What an operator does about a message returned by `exchange`."""
    if is_event_exchange(exchange):
        return (
            f"{exchange} has no alternate exchange ({UNROUTED_EXCHANGE}) or its parking queue "
            "is gone: run `warren topology check`"
        )
    return "start the subscribing service or run `warren topology apply`, then it is delivered"


def report_unroutable(service: str, message_id: str, type_: str, error: Unroutable) -> Unroutable:
    """Count and log a returned outbox row (never its body); the error to reschedule it with."""
    OUTBOX_UNROUTABLE.labels(service, error.exchange).inc()
    logger.error(
        "outbox row {} ({}) of {} is unroutable: exchange {} routes key {} to no queue; it stays "
        "in the outbox and is retried with backoff; {}",
        message_id,
        type_,
        service,
        error.exchange,
        error.routing_key,
        hint(error.exchange),
    )
    return error
