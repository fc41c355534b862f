"""Delayed delivery through broker-side delay levels: one call, no plugin, nothing held in memory.

The message is published into the level of the highest set bit of its delay (in units); each
level's queue holds it for `unit * 2**L` and then dead-letters it one level down, where the
routing key's next bit decides whether it waits again; at the bottom it reaches its queue.
"""

from __future__ import annotations

from datetime import timedelta

import aio_pika

from config.settings import Settings
from contracts.topology import delay_target
from outbox.amqp import ConfirmedPublisher


class Scheduler:
    """Sends a message to a queue after a delay, with publisher confirms."""

    def __init__(self, publisher: ConfirmedPublisher, settings: Settings) -> None:
        self._publisher = publisher
        self._unit_ms = settings.delay_unit_ms
        self._levels = settings.delay_levels

    @property
    def max_delay(self) -> timedelta:
        """The longest delay the declared levels can express."""
        return timedelta(milliseconds=self._unit_ms * (2**self._levels - 1))

    async def schedule(self, message: aio_pika.Message, queue: str, delay: timedelta) -> None:
        """Deliver `message` to `queue` no earlier than `delay` from now (rounded up to a unit)."""
        delay_ms = max(0, round(delay.total_seconds() * 1000))
        exchange, routing_key = delay_target(delay_ms, queue, self._unit_ms, self._levels)
        await self._publisher.publish(message, exchange, routing_key)
