"""The gateway's link to RabbitMQ: its outbox relay and the status projection consumer.

Both run in the background. The HTTP side never waits for them: while the broker is away,
orders are accepted into the outbox and this task keeps trying to connect.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

from aio_pika.abc import AbstractRobustConnection
from loguru import logger
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from config.settings import Settings
from contracts.accounts import UserStatusChanged
from contracts.orders import OrderStatusChanged
from gateway.accounts import ACCOUNT_HANDLERS, user_status_handler
from gateway.notifier import Notifier
from gateway.projection import status_changed_handler
from gateway.service import SERVICE
from gateway.tables import IdempotencyRecord
from outbox.amqp import ConfirmedPublisher, connect_broker
from outbox.db import session_factory
from outbox.relay import Relay
from outbox.tables import utcnow
from workers.runtime.background import BackgroundTask
from workers.runtime.consumer import Consumer
from workers.runtime.edge import edge_broker, mark_pauses, router_for, start_edge, stop_edge
from workers.runtime.service import ServiceSpec, declare_topology
from workers.runtime.tracing import Spans

EXPIRY_INTERVAL_S = 300.0  # how often old idempotency keys are deleted


def status_subscriber(notifier: Notifier) -> ServiceSpec:
    """The gateway's one subscription: order statuses into its projection."""
    return ServiceSpec(
        name=SERVICE.name,
        subscription=SERVICE.subscription,
        handlers={
            OrderStatusChanged.NAME: status_changed_handler(notifier),
            UserStatusChanged.NAME: user_status_handler(notifier),
            **ACCOUNT_HANDLERS,
        },
    )


class Messaging:
    """Connects when it can, then relays the outbox and projects order statuses.

    Two background tasks, each restarted with backoff when it fails: `messaging` (connect,
    declare, relay and consume) and `idempotency-expiry` (deletes old idempotency keys).
    """

    def __init__(
        self, settings: Settings, engine: AsyncEngine, notifier: Notifier, spans: Spans
    ) -> None:
        self._settings, self._engine, self._notifier = settings, engine, notifier
        self._spans = spans
        self._relay: Relay | None = None
        self._consumer: Consumer | None = None
        self._connection: AbstractRobustConnection | None = None
        self._stop = asyncio.Event()
        self.tasks = (
            BackgroundTask(SERVICE.name, "messaging", self._messaging, self._stop),
            BackgroundTask(SERVICE.name, "idempotency-expiry", self._expiry, self._stop),
        )

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up right now."""
        connection = self._connection
        if connection is None or connection.is_closed:
            return False
        transport = getattr(connection, "transport", None)  # None while a robust one reconnects
        return transport is not None and not transport.connection.is_closed

    @property
    def paused(self) -> dict[str, bool]:
        """Which background parts move nothing right now: waiting out an outage, or not started.

        Before the relay and the consumer run (connecting to the broker, restarting after a
        failure) both count as paused: orders wait in the outbox meanwhile.
        """
        relay, consumer = self._relay, self._consumer
        return {
            "consumer": consumer is None or consumer.pause.paused,
            "relay": relay is None or relay.paused,
        }

    @property
    def carrying(self) -> bool:
        """False while the relay and projection are down after a failed start or a crash.

        An unreachable broker is not such a failure: orders wait in the outbox meanwhile.
        """
        return self.tasks[0].healthy

    def wake(self) -> None:
        """An order was committed: publish it now if we can."""
        if self._relay is not None:
            self._relay.wake()

    def start(self) -> None:
        """Run in the background until `stop`."""
        for task in self.tasks:
            task.start()

    async def stop(self) -> None:
        """Drain the consumer, flush the outbox once and disconnect."""
        self._stop.set()
        for task in self.tasks:
            await task.wait()

    async def _messaging(self, task: BackgroundTask) -> None:
        # broker down: the task waits and tries again (an outage), orders wait in the outbox
        connection = await connect_broker(self._settings, f"{SERVICE.name}-api")
        self._connection = connection
        try:
            await self._relay_and_consume(connection, task)
        finally:
            self._relay = self._consumer = None
            await connection.close()

    async def _relay_and_consume(
        self, connection: AbstractRobustConnection, task: BackgroundTask
    ) -> None:
        await declare_topology(connection, self._settings, SERVICE.subscription)
        publisher = ConfirmedPublisher(connection)
        relay = Relay(SERVICE.name, self._engine, publisher, self._settings)
        spec = status_subscriber(self._notifier)
        consumer = Consumer(
            service=SERVICE.name,
            queue=SERVICE.subscription.queue,
            handlers=spec.handlers,
            sessions=session_factory(self._engine),
            publisher=publisher,
            settings=self._settings,
            spans=self._spans,
        )
        role = f"{SERVICE.name}-api"
        broker = edge_broker(self._settings, role)
        broker.include_router(router_for(spec, consumer))
        marker = mark_pauses(broker, consumer, role)
        try:
            await start_edge(broker, consumer)
            self._relay, self._consumer = relay, consumer
            task.up()
            await relay.run(self._stop)  # it outlives outages itself; returns on stop
        finally:
            try:
                await stop_edge(broker, consumer, self._settings.drain_timeout_s)
                await marker.close()
            except Exception as exc:  # a half-started edge; the connection closes anyway
                logger.warning("status consumer did not stop cleanly: {}", type(exc).__name__)
        await relay.relay_once()

    async def _expiry(self, task: BackgroundTask) -> None:
        sessions = session_factory(self._engine)
        keep = timedelta(hours=self._settings.idempotency_retention_hours)
        while not self._stop.is_set():
            started = time.monotonic()
            async with sessions() as session:
                await session.exec(
                    delete(IdempotencyRecord).where(
                        col(IdempotencyRecord.created_at) < utcnow() - keep
                    )
                )
                await session.commit()
            task.up()
            wait = max(0.0, EXPIRY_INTERVAL_S - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), wait)
