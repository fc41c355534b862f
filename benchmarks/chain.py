"""The raw baseline's chain: the hops of one order's happy path, without Warren's machinery.

One chain is one order: PlaceOrder -> orders; ReserveStock -> inventory; StockReserved ->
orders; CapturePayment -> payments; PaymentCaptured -> orders; ArrangeShipment -> shipping;
ShipmentArranged -> orders; plus the status event the orders "service" publishes at each of
its four steps, consumed by the load driver in the gateway's place. That is 11 messages per
chain, 8 of them on the critical path (the 7 saga hops and the final CONFIRMED status); Warren
moves the same 11 plus one saga timer per step (3), which the baseline leaves out.
"""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, DeliveryMode

from config.settings import Settings
from workers.runtime.discovery import workers
from workers.runtime.topology import work_queue_arguments

EXCHANGE = "bench.chain"
STATUS = "status"  # the gateway's part, played by the load driver
NEXT_STEP = {
    "PlaceOrder": "ReserveStock",
    "ReserveStock": "StockReserved",
    "StockReserved": "CapturePayment",
    "CapturePayment": "PaymentCaptured",
    "PaymentCaptured": "ArrangeShipment",
    "ArrangeShipment": "ShipmentArranged",
}


def consumer_of(short_name: str) -> str:
    """The worker service that consumes the contract `<context>.<short_name>`."""
    for declared in workers():
        if any(name.rpartition(".")[2] == short_name for name in declared.subscription.messages):
            return declared.name
    raise KeyError(f"no worker consumes {short_name}")


# Each hop is played by the role of the service that handles it in Warren.
HANDLED_BY = {step: consumer_of(step) for step in (*NEXT_STEP, "ShipmentArranged")}
ROLES = tuple(dict.fromkeys(HANDLED_BY.values()))
STATUS_AFTER = {
    "PlaceOrder": "PENDING",
    "StockReserved": "STOCK_RESERVED",
    "PaymentCaptured": "PAID",
    "ShipmentArranged": "CONFIRMED",
}
FINAL_STATUS = "CONFIRMED"
MESSAGES_PER_CHAIN = 1 + len(NEXT_STEP) + len(STATUS_AFTER)
CRITICAL_PATH_HOPS = len(HANDLED_BY) + 1
_PADDING = "x" * 96  # bodies about the size of Warren's (90 to 260 bytes)


def queue_name(role: str) -> str:
    """The quorum queue of one baseline role."""
    return f"bench.{role}"


def message(step: str, order_id: str, status: str | None = None) -> aio_pika.Message:
    """A persistent message shaped like Warren's: the same properties and headers."""
    body = {"order_id": order_id, "step": step, "status": status, "pad": _PADDING}
    return raw_message(step if status is None else f"StatusChanged.{status}", body, order_id)


def raw_message(type_: str, body: dict[str, Any], correlation_id: str) -> aio_pika.Message:
    """A persistent JSON message with the properties and headers Warren's messages carry."""
    return aio_pika.Message(
        json.dumps(body).encode(),
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        type=type_,
        message_id=str(uuid.uuid4()),
        correlation_id=correlation_id,
        timestamp=datetime.now(UTC),
        app_id="bench",
        headers={
            "causation-id": str(uuid.uuid4()),
            "traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
        },
    )


def effects(step: str, order_id: str) -> list[tuple[str, aio_pika.Message]]:
    """What handling `step` publishes: (routing key, message) pairs."""
    out = []
    if (following := NEXT_STEP.get(step)) is not None:
        out.append((HANDLED_BY[following], message(following, order_id)))
    if (status := STATUS_AFTER.get(step)) is not None:
        out.append((STATUS, message("StatusChanged", order_id, status)))
    return out


async def declare(channel: AbstractChannel, settings: Settings) -> None:
    """The exchange and one queue per role, with the same arguments as Warren's work queues."""
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    for role in (*ROLES, STATUS):
        name = queue_name(role)
        queue = await channel.declare_queue(
            name, durable=True, arguments=work_queue_arguments(settings, name)
        )
        await queue.bind(exchange, routing_key=role)
