"""Named robust connections, confirmed channels and the AMQP shape of our messages."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
    DeliveryMode,
)
from aiormq.exceptions import DeliveryError, PublishError

from config.settings import Settings
from contracts.envelope import CONTENT_TYPE, WireMessage
from outbox.failover import connect_failover


def connection_name(role: str, pid: int | None = None) -> str:
    """How the management UI shows a process (this one by default): `orders-worker@host:pid`."""
    return f"{role}@{socket.gethostname()}:{os.getpid() if pid is None else pid}"


async def connect(
    urls: str | Sequence[str],
    role: str,
    *,
    timeout: float = 10.0,
    reconnect_interval_s: float = 1.0,
) -> AbstractRobustConnection:
    """A robust connection named after this process's role, failing over between the nodes."""
    return await connect_failover(
        [urls] if isinstance(urls, str) else list(urls),
        role,
        timeout=timeout,
        reconnect_interval_s=reconnect_interval_s,
        client_properties={"connection_name": connection_name(role)},
    )


async def connect_broker(settings: Settings, role: str) -> AbstractRobustConnection:
    """This process's broker connection: to any node of the settings, failing over between them."""
    return await connect(
        settings.amqp_urls(), role, reconnect_interval_s=settings.broker_reconnect_interval_s
    )


def amqp_message(
    *,
    body: bytes,
    type: str | None,
    message_id: str | None,
    correlation_id: str | None,
    timestamp: datetime | None,
    headers: Mapping[str, Any],
    app_id: str | None,
    content_type: str | None = CONTENT_TYPE,
) -> aio_pika.Message:
    """A persistent AMQP message with Warren's properties (docs/architecture.md, "Contracts")."""
    return aio_pika.Message(
        body,
        content_type=content_type,
        delivery_mode=DeliveryMode.PERSISTENT,
        type=type,
        message_id=message_id,
        correlation_id=correlation_id,
        timestamp=timestamp,
        headers=dict(headers),
        app_id=app_id,
    )


def from_wire(wire: WireMessage, app_id: str) -> aio_pika.Message:
    """The AMQP message for an encoded contract message."""
    return amqp_message(
        body=wire.body,
        type=wire.type,
        message_id=wire.message_id,
        correlation_id=wire.correlation_id,
        timestamp=wire.timestamp,
        headers=wire.headers,
        app_id=app_id,
        content_type=wire.content_type,
    )


def persistent_copy(
    incoming: AbstractIncomingMessage, headers: Mapping[str, Any]
) -> aio_pika.Message:
    """The same body, properties and message id as a delivery, persistent, with new headers."""
    return aio_pika.Message(
        incoming.body,
        headers=dict(headers),
        content_type=incoming.content_type,
        content_encoding=incoming.content_encoding,
        delivery_mode=DeliveryMode.PERSISTENT,
        priority=incoming.priority,
        correlation_id=incoming.correlation_id,
        reply_to=incoming.reply_to,
        message_id=incoming.message_id,
        timestamp=incoming.timestamp,
        type=incoming.type,
        app_id=incoming.app_id,
    )


class BrokerUnreachable(ConnectionError):
    """A publish failed while the connection to the broker was down or reconnecting."""


class ConfirmedPublisher:
    """Publishes with confirms and `mandatory`; an unroutable message raises, never vanishes."""

    def __init__(self, connection: AbstractRobustConnection) -> None:
        self._connection = connection
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}

    async def _ready_channel(self) -> AbstractChannel:
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            self._exchanges.clear()
        return self._channel

    async def publish(
        self, message: aio_pika.Message, exchange: str, routing_key: str, *, timeout: float = 10.0
    ) -> Any:
        """Publish and wait for the broker's confirm, `timeout` seconds at most in all.

        aio-pika's own timeout covers only the confirm: on a robust connection that is
        reconnecting, a publish would wait for the new channel without limit. A publish that
        times out may still have reached the broker; its outbox row is published again later.
        """
        try:
            async with asyncio.timeout(timeout):
                channel = await self._ready_channel()
                target = self._exchanges.get(exchange)
                if target is None:
                    target = (
                        channel.default_exchange
                        if exchange == ""
                        else await channel.get_exchange(exchange, ensure=False)
                    )
                    self._exchanges[exchange] = target
                return await target.publish(message, routing_key, mandatory=True, timeout=timeout)
        except (PublishError, DeliveryError):
            raise  # the broker answered: returned or nacked
        except Exception as exc:
            if not self.connected:
                raise BrokerUnreachable(f"{type(exc).__name__}: {exc}"[:200]) from exc
            raise

    @property
    def connected(self) -> bool:
        """Whether the connection is up right now (a robust one may be reconnecting)."""
        connection = self._connection
        if connection.is_closed:
            return False
        transport = getattr(connection, "transport", None)
        return transport is not None and not transport.connection.is_closed

    async def close(self) -> None:
        """Close the channel (the connection belongs to the caller)."""
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
