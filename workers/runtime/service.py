"""One worker process: bootstrap its database, topology, consumer and relay; drain on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractRobustConnection
from loguru import logger
from prometheus_client import start_http_server

from config.settings import Settings
from contracts.registry import Registry
from contracts.topology import Subscription, dead_letter_queue
from outbox.amqp import ConfirmedPublisher, connect_broker
from outbox.db import (
    HeldConnection,
    SessionFactory,
    create_engine,
    create_tables,
    session_factory,
)
from outbox.relay import Relay
from outbox.tables import MESSAGING_TABLES
from workers.runtime.consumer import Consumer, Handler
from workers.runtime.discovery import subscriptions
from workers.runtime.edge import edge_broker, mark_pauses, router_for, start_edge, stop_edge
from workers.runtime.http import ApiServer
from workers.runtime.logs import configure_logging
from workers.runtime.topology import apply_plan, build_plan, only_queues
from workers.runtime.tracing import Spans


@dataclass(frozen=True)
class ServiceSpec:
    """What makes a worker service: its queue, its handlers and its tables."""

    name: str
    subscription: Subscription
    handlers: Mapping[str, Handler]
    tables: tuple[Any, ...] = ()
    permanent_errors: tuple[type[BaseException], ...] = ()
    on_start: Callable[[SessionFactory], Awaitable[None]] | None = None
    # The HTTP API of a service declared with `http=True`: an ASGI app built from the worker's
    # sessions and the relay's wake-up (see workers/runtime/http.py).
    api: Callable[[SessionFactory, Callable[[], None]], Any] | None = None
    # The contracts it consumes and sends, when some are not among the repository's (`contracts/`
    # and the `warren.contracts` entry points): `default_registry().extended(its own)`.
    registry: Registry | None = None


async def declare_topology(
    connection: AbstractRobustConnection,
    settings: Settings,
    own: Subscription,
    registry: Registry | None = None,
) -> None:
    """Declare what this service needs: everything (`all`), or only its own queues (`own`).

    `own` is for least-privileged broker users; `warren topology apply` declares the rest.
    """
    wanted = {s.queue: s for s in (*subscriptions(), own)}.values()
    plan = build_plan(settings, wanted, registry)
    mine = {own.queue, dead_letter_queue(own.queue)}
    if settings.declare_topology == "own":
        await apply_plan(connection, only_queues(plan, mine))
    else:
        await apply_plan(connection, plan, tolerate={q.name for q in plan.queues} - mine)


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT ask the process to drain and exit."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def serve_metrics(settings: Settings) -> None:
    """Expose /metrics on the configured port, if any."""
    if settings.metrics_port is not None:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
        logger.info("metrics on :{}/metrics", settings.metrics_port)


async def run_worker(
    spec: ServiceSpec,
    settings: Settings,
    *,
    database_url: str | None = None,
    with_relay: bool = True,
    stop: asyncio.Event | None = None,
) -> None:
    """Run a worker until `stop` (or a signal); then drain, flush the outbox and close."""
    stop = stop or asyncio.Event()
    engine = create_engine(
        database_url or settings.database_url(spec.name),
        idle_in_transaction_s=settings.relay_lease_s,
        commit_off_loop=True,  # the loop consumes and publishes while a commit syncs
    )
    await create_tables(engine, (*MESSAGING_TABLES, *spec.tables))
    sessions = session_factory(engine)
    if spec.on_start is not None:
        await spec.on_start(sessions)
    connection = await connect_broker(settings, f"{spec.name}-worker")
    await declare_topology(connection, settings, spec.subscription, spec.registry)
    publisher = ConfirmedPublisher(connection)
    relay = Relay(spec.name, engine, publisher, settings)
    spans = Spans(spec.name, endpoint=settings.otlp_endpoint)
    consumer = Consumer(
        service=spec.name,
        queue=spec.subscription.queue,
        handlers=spec.handlers,
        sessions=sessions,
        publisher=publisher,
        settings=settings,
        on_commit=relay.wake,
        dispatcher=relay,  # publishes what a handler sends straight after the commit
        permanent_errors=spec.permanent_errors,
        spans=spans,
        registry=spec.registry,
        connection=HeldConnection(engine),  # no checkout per transaction under load
    )
    broker = edge_broker(settings, f"{spec.name}-worker")
    broker.include_router(router_for(spec, consumer))
    marker = mark_pauses(broker, consumer, f"{spec.name}-worker")
    relay_stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(relay_stop)) if with_relay else None
    api = (
        None if spec.api is None else ApiServer(spec.api(sessions, relay.wake), settings, spec.name)
    )
    if api is not None:
        await api.start()
    await start_edge(broker, consumer)
    logger.info("{} worker started", spec.name)
    await stop.wait()
    logger.info("{} worker draining", spec.name)
    if api is not None:
        await api.stop()
    await stop_edge(broker, consumer, settings.drain_timeout_s)
    await consumer.close()
    await marker.close()  # its queue went with the connection; this ends its task
    await relay.settle()
    relay_stop.set()
    if relay_task is not None:
        await relay_task
        await relay.relay_once()
    await connection.close()
    await engine.dispose()
    spans.shutdown()
    logger.info("{} worker stopped", spec.name)


async def run_relay(service: str, settings: Settings, *, database_url: str | None = None) -> None:
    """Run only the outbox relay of one service's database until a signal."""
    stop = asyncio.Event()
    stop_on_signals(stop)
    engine = create_engine(
        database_url or settings.database_url(service),
        idle_in_transaction_s=settings.relay_lease_s,
    )
    await create_tables(engine, MESSAGING_TABLES)
    connection = await connect_broker(settings, f"{service}-relay")
    relay = Relay(service, engine, ConfirmedPublisher(connection), settings)
    await relay.run(stop)
    await connection.close()
    await engine.dispose()


def main(spec: ServiceSpec, settings: Settings, **kwargs: Any) -> None:
    """Entry point of a worker process: logging, metrics, signals, run."""
    configure_logging(spec.name, level=settings.log_level, json_lines=settings.log_json)
    serve_metrics(settings)

    async def _run() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await run_worker(spec, settings, stop=stop, **kwargs)

    use_uvloop()
    gc.collect()
    gc.freeze()  # what the imports made lives as long as the process: no collection walks it
    asyncio.run(_run())


def use_uvloop() -> None:
    """Run on uvloop where it is installed: less CPU per message than the default loop."""
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()
