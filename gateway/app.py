"""The composition root of the gateway: `create_app(settings)` builds the whole process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from config.settings import Settings, get_settings
from gateway import problems
from gateway.accounts import AccountDesk
from gateway.auth import ApiKeys, RateLimiter
from gateway.calls import ServiceCalls
from gateway.carts import CartDesk, cart_service
from gateway.desk import OrderDesk
from gateway.headers import SecurityHeaders
from gateway.limits import BodySizeLimit
from gateway.messaging import Messaging
from gateway.metrics import Measure, serve_metrics
from gateway.notifier import Notifier
from gateway.place_route import Gateway
from gateway.routes import carts, orders, probes, public_metrics, users
from gateway.tables import TABLES
from outbox.db import create_engine, create_tables, session_factory
from outbox.tables import MESSAGING_TABLES
from workers.runtime.tracing import Spans

DESCRIPTION = """Place orders and follow them to a terminal status; manage users and their API keys.

Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>`. Every error is
`application/problem+json`. `POST /orders` answers 202 at once: the order is stored and handed
to the saga through an outbox, whether or not the message broker is reachable."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway application; nothing connects until it starts."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = settings.database_url("gateway")
        engine = create_engine(url, idle_in_transaction_s=settings.relay_lease_s)
        read_engine = create_engine(url, read_only=True)
        await create_tables(engine, (*MESSAGING_TABLES, *TABLES))
        app.state.metrics_listener = metrics_listener = serve_metrics(settings)
        notifier = app.state.notifier
        spans = Spans("gateway", endpoint=settings.otlp_endpoint)
        messaging = Messaging(settings, engine, notifier, spans)
        app.state.read_engine, app.state.messaging = read_engine, messaging
        app.state.desk = OrderDesk(
            session_factory(engine), session_factory(read_engine), notifier, messaging.wake, spans
        )
        app.state.accounts = AccountDesk(
            session_factory(engine), session_factory(read_engine), notifier, messaging.wake
        )
        app.state.keys.read_users_from(session_factory(read_engine))
        cart_calls = ServiceCalls(cart_service(), settings)
        app.state.carts = CartDesk(cart_calls, app.state.desk)
        messaging.start()
        yield
        await cart_calls.close()
        await messaging.stop()
        spans.shutdown()
        await engine.dispose()
        await read_engine.dispose()
        if metrics_listener is not None:
            metrics_listener.shutdown()
            metrics_listener.server_close()

    docs = bool(settings.gateway_docs)
    app = Gateway(
        title="Warren gateway",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    app.state.keys = ApiKeys(settings)
    app.state.notifier = Notifier()
    app.state.limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    app.include_router(orders)
    app.include_router(users)
    app.include_router(carts)
    app.include_router(probes)
    if settings.gateway_metrics_port is None:
        app.include_router(public_metrics)
    problems.install(app)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(SecurityHeaders, docs_paths=("/docs", "/redoc") if docs else ())
    app.add_middleware(Measure)  # outermost, so refusals by the layers above count too
    app.serve_orders_in_front()  # in front of all of them: it does their work itself
    return app
