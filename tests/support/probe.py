"""A worker with scripted behaviours, run as a real subprocess by the runtime's tests.

The behaviour is chosen by the `customer_id` of each PlaceOrder: `ok`, `fail-N` (a transient
failure on the first N attempts), `always-fail`, `permanent`, `crash` (SIGKILL itself), or
`slow-N` (N milliseconds of work).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Field, SQLModel

from config.settings import Settings
from contracts.envelope import Envelope
from contracts.orders import OrderStatus, OrderStatusChanged
from contracts.topology import Subscription
from outbox.tables import utcnow
from outbox.unit_of_work import UnitOfWork
from workers.runtime.errors import PermanentError, TransientError
from workers.runtime.service import ServiceSpec, main


class ProbeEffect(SQLModel, table=True):
    """One row per applied effect: a test counts them to prove effects happen once."""

    __tablename__ = "probe_effect"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(index=True, max_length=64)
    message_id: str = Field(max_length=64)
    message_type: str = Field(max_length=100)
    applied_at: datetime = Field(default_factory=utcnow)


def _log_attempt(order_id: str, mode: str) -> int:
    """Append this attempt to the attempt log; for `fail-N`, the attempts so far for the order."""
    path = Path(os.environ["PROBE_LOG"])
    with path.open("a") as log:
        log.write(json.dumps({"order_id": order_id, "mode": mode, "t": time.time()}) + "\n")
    if not mode.startswith("fail-"):
        return 1
    return sum(json.loads(line)["order_id"] == order_id for line in path.read_text().splitlines())


async def place_order(envelope: Envelope[Any], uow: UnitOfWork) -> None:
    order = envelope.message
    mode = order.customer_id
    attempts = _log_attempt(str(order.order_id), mode)
    if mode == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "always-fail" or (mode.startswith("fail-") and attempts <= int(mode[5:])):
        raise TransientError(f"scripted failure on attempt {attempts}")
    if mode == "permanent":
        raise PermanentError("scripted permanent failure")
    if mode.startswith("slow-"):
        await asyncio.sleep(int(mode[5:]) / 1000)
    uow.session.add(
        ProbeEffect(
            order_id=str(order.order_id), message_id=envelope.message_id, message_type=order.NAME
        )
    )
    uow.publish(
        envelope.caused(
            OrderStatusChanged(order_id=order.order_id, status=OrderStatus.PENDING, sequence=1)
        )
    )


async def status_changed(envelope: Envelope[Any], uow: UnitOfWork) -> None:
    event = envelope.message
    uow.session.add(
        ProbeEffect(
            order_id=str(event.order_id), message_id=envelope.message_id, message_type=event.NAME
        )
    )


HANDLERS = {"orders.PlaceOrder": place_order, "orders.OrderStatusChanged": status_changed}


def spec() -> ServiceSpec:
    """The probe service as configured by PROBE_GROUP and PROBE_MESSAGES."""
    messages = tuple(os.environ.get("PROBE_MESSAGES", "orders.PlaceOrder").split(","))
    return ServiceSpec(
        name="scripted",
        subscription=Subscription("scripted", os.environ.get("PROBE_GROUP", "work"), messages),
        handlers={name: HANDLERS[name] for name in messages},
        tables=(ProbeEffect,),
    )


if __name__ == "__main__":
    main(
        spec(),
        Settings(),
        database_url=os.environ["PROBE_DB_URL"],
        with_relay=os.environ.get("PROBE_RELAY", "1") == "1",
    )
