"""Walk a dead-letter queue from its head without losing or reordering what stays in it.

Messages are taken one by one with `basic.get` (unacked), up to the depth the queue had at the
start, so a scan never meets a message twice. What the caller removes is acked; what it keeps
goes back, and how depends on where the broker puts a requeued message (verified on 3.10):

- a classic queue requeues a message at its original position, so kept messages are held
  unacked and the closing channel returns them all in place;
- a quorum queue requeues a nacked message at the back (and returns a closed channel's messages
  to the head in no particular order), so each kept message is nacked at once and the scan
  always walks the whole depth: the queue is rotated once and ends in its original order.

A killed scan loses nothing: the broker returns every unacked message (order aside).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from config.settings import Settings
from outbox.amqp import connection_name
from outbox.failover import connect_plain
from workers.ops.management import Management

__all__ = ["DlqScan", "QueueNotFound", "existing_queue", "open_connection"]


async def open_connection(settings: Settings, role: str = "warren-dlq") -> AbstractConnection:
    """A named, non-robust connection: a reconnect would invalidate the deliveries we hold."""
    return await connect_plain(
        settings.amqp_urls(), client_properties={"connection_name": connection_name(role)}
    )


class QueueNotFound(LookupError):
    """The queue does not exist in this virtual host, or cannot be scanned."""


def _missing(name: str) -> QueueNotFound:
    return QueueNotFound(
        f"queue {name!r} does not exist; `warren dlq list` shows the dead-letter queues"
    )


async def existing_queue(channel: AbstractChannel, name: str) -> AbstractQueue:
    """The queue `name` by passive declare; a missing queue raises QueueNotFound."""
    try:
        return await channel.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        raise _missing(name) from None


async def queue_type(settings: Settings, name: str) -> str:
    """`classic` or `quorum`, from the management API."""
    async with Management(settings) as management:
        info = await management.queue(name)
    if info is None:
        raise _missing(name)
    kind = str(info.get("type", "classic"))
    if kind not in ("classic", "quorum"):
        raise QueueNotFound(f"queue {name!r} is a {kind} queue; only classic and quorum scan")
    return kind


class DlqScan:
    """One pass over a queue on a dedicated channel: `next()` until None, `remove()` to delete.

    `on_take(taken, depth)` follows the pass, including the rest of a quorum queue's rotation.
    """

    def __init__(
        self,
        settings: Settings,
        connection: AbstractConnection,
        queue: str,
        on_take: Callable[[int, int], None] | None = None,
    ) -> None:
        self._settings, self._connection, self.queue = settings, connection, queue
        self._on_take = on_take
        self._channel: AbstractChannel | None = None
        self._amqp_queue: AbstractQueue | None = None
        self._kept: dict[int, AbstractIncomingMessage] = {}
        self._rotates = False
        self.depth = 0
        self.taken = 0

    async def __aenter__(self) -> Self:
        self._rotates = await queue_type(self._settings, self.queue) == "quorum"
        self._channel = await self._connection.channel(publisher_confirms=False)
        self._amqp_queue = await existing_queue(self._channel, self.queue)
        self.depth = int(self._amqp_queue.declaration_result.message_count or 0)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        channel = self._channel
        if channel is None or channel.is_closed:
            return
        try:
            # Finish the rotation unless interrupted; the broker takes back what we still hold.
            if self._rotates and (et is None or issubclass(et, Exception)):
                while await self.next() is not None:
                    pass
                await self._give_back()
        finally:
            await channel.close()

    async def next(self) -> AbstractIncomingMessage | None:
        """The next message, or None past the depth at start; the previous one, if kept, stays."""
        assert self._amqp_queue is not None, "use DlqScan as an async context manager"
        await self._give_back()
        if self.taken >= self.depth:
            return None
        message = await self._amqp_queue.get(no_ack=False, fail=False)
        if message is None:
            return None
        assert message.delivery_tag is not None
        self.taken += 1
        self._kept[message.delivery_tag] = message
        if self._on_take is not None:
            self._on_take(self.taken, self.depth)
        return message

    async def remove(self, message: AbstractIncomingMessage) -> None:
        """Take `message` out of the queue for good (ack it)."""
        assert message.delivery_tag is not None
        del self._kept[message.delivery_tag]
        await message.ack()

    async def _give_back(self) -> None:
        if self._rotates:
            for message in self._kept.values():
                await message.nack(requeue=True)
            self._kept.clear()
