"""Robust connections that fail over between the nodes of a RabbitMQ cluster.

aio-pika's robust connection reconnects to the one URL it was given. A client of a cluster must
try another node when its node goes: here every connection attempt after the first goes to the
next node in turn, and losing and regaining the broker is logged and counted per role.
See docs/decisions.md, "Cluster-aware connections".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection
from aio_pika.connection import UnderlayConnection
from aio_pika.robust_connection import RobustConnection
from loguru import logger
from yarl import URL

from outbox.metrics import BROKER_CONNECTED, BROKER_PAUSE_SECONDS, BROKER_RECONNECTS


def node_of(url: URL | str) -> str:
    """`host:port` of a broker URL: what logs may show (never the credentials)."""
    parsed = URL(str(url))
    return f"{parsed.host}:{parsed.port}"


class FailoverConnection(RobustConnection):
    """A robust connection whose every attempt after the first goes to the next node in turn."""

    def __init__(
        self,
        url: URL | str,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        nodes: Sequence[str] = (),
        role: str = "warren",
        **kwargs: Any,
    ) -> None:
        first = URL(str(url))
        # Every node gets the query of the URL given (connection name, heartbeat...).
        self._nodes = [URL(n).update_query(first.query) for n in nodes] or [first]
        hosts = [node_of(n) for n in self._nodes]
        self._current = hosts.index(node_of(first)) if node_of(first) in hosts else 0
        self._attempts = 0
        self._role = role
        self._lost_at: float | None = None
        self._up = False
        self._transport: UnderlayConnection | None = None
        self._ready = False
        super().__init__(first, loop=loop, **kwargs)
        self._ready = True

    @property
    def url(self) -> URL:
        """The node this connection is on, or trying next."""
        return self._nodes[self._current]

    @url.setter
    def url(self, value: URL) -> None:  # aio-pika sets it at start and on a secret update
        self._nodes[self._current] = URL(str(value))

    @property
    def transport(self) -> UnderlayConnection | None:
        """The live AMQP connection (None between attempts)."""
        return self._transport

    @transport.setter
    def transport(self, value: UnderlayConnection | None) -> None:
        # aio-pika clears the transport at the start of every connection attempt.
        if value is None and self._ready and not self._close_in_progress:
            self._begin_attempt()
        self._transport = value

    def _begin_attempt(self) -> None:
        if self._attempts:
            self._current = (self._current + 1) % len(self._nodes)
        self._attempts += 1

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # a failed attempt closes too: only a connection that was up is lost
        if self._up and not (self._close_called or self.is_closed):
            self._up = False
            self._lost_at = time.monotonic()
            BROKER_CONNECTED.labels(self._role).set(0)
            logger.warning(
                "{} lost its broker connection to {}; reconnecting to the next of {} node(s)",
                self._role,
                node_of(self.url),
                len(self._nodes),
            )
        await super()._on_connection_close(closing)

    async def _on_connected(self) -> None:
        await super()._on_connected()
        self._up = True
        BROKER_CONNECTED.labels(self._role).set(1)
        if self._lost_at is not None:
            paused = time.monotonic() - self._lost_at
            self._lost_at = None
            BROKER_RECONNECTS.labels(self._role).inc()
            BROKER_PAUSE_SECONDS.labels(self._role).observe(paused)
            logger.warning(
                "{} reconnected to {} after {:.1f}s", self._role, node_of(self.url), paused
            )


async def connect_failover(
    urls: Sequence[str],
    role: str,
    *,
    timeout: float,
    reconnect_interval_s: float,
    client_properties: dict[str, Any] | None = None,
) -> FailoverConnection:
    """A connection to the first node that answers, failing over to the others later."""
    if not urls:
        raise ValueError("no broker URL given")
    error: BaseException | None = None
    for start in urls:
        connection = FailoverConnection(
            start,
            nodes=urls,
            role=role,
            reconnect_interval=reconnect_interval_s,
            client_properties=client_properties,
        )
        try:
            await connection.connect(timeout=timeout)
        except Exception as exc:
            error = exc
            logger.warning("broker node {} does not answer ({})", node_of(start), exc)
            await connection.close()
            continue
        return connection
    assert error is not None
    raise error


async def connect_plain(
    urls: Sequence[str], client_properties: dict[str, Any]
) -> AbstractConnection:
    """A plain (non-robust) connection to the first node that answers."""
    error: BaseException | None = None
    for url in urls:
        try:
            return await aio_pika.connect(url, client_properties=client_properties)
        except Exception as exc:
            error = exc
            logger.warning("broker node {} does not answer ({})", node_of(url), exc)
    assert error is not None
    raise error
