"""A worker whose handler fails until a switch flips: it fills and then drains a DLQ on cue.

The switch is the file named by `SWITCH_FILE`: while it says `fail`, every message fails
transiently (with `WARREN_DELAYED_RETRIES=0` it is dead-lettered at once); once it says `ok`,
each message applies one effect (a `probe_effect` row for its order id).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from config.settings import Settings
from contracts.envelope import Envelope
from contracts.topology import Subscription
from outbox.unit_of_work import UnitOfWork
from tests.support.probe import ProbeEffect
from workers.runtime.errors import TransientError
from workers.runtime.service import ServiceSpec, main

MESSAGES = ("orders.PlaceOrder", "orders.CancelOrder")


def switch_is_on() -> bool:
    """Whether the switch file says `ok`."""
    return Path(os.environ["SWITCH_FILE"]).read_text().strip() == "ok"


async def apply_effect(envelope: Envelope[Any], uow: UnitOfWork) -> None:
    message = envelope.message
    if not switch_is_on():
        raise TransientError("the switch says fail")
    uow.session.add(
        ProbeEffect(
            order_id=str(message.order_id),
            message_id=envelope.message_id,
            message_type=message.NAME,
        )
    )


def spec() -> ServiceSpec:
    """The switch service on queue `scripted.<PROBE_GROUP>`."""
    return ServiceSpec(
        name="scripted",
        subscription=Subscription("scripted", os.environ["PROBE_GROUP"], MESSAGES),
        handlers=dict.fromkeys(MESSAGES, apply_effect),
        tables=(ProbeEffect,),
    )


if __name__ == "__main__":
    main(spec(), Settings(), database_url=os.environ["PROBE_DB_URL"], with_relay=False)
