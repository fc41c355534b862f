"""HTTP metrics of the gateway."""

from __future__ import annotations

import time
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Histogram, start_http_server
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.settings import Settings

REQUESTS = Counter(
    "warren_gateway_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "warren_gateway_request_seconds",
    "Time to answer an HTTP request (long-polls included).",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class Measure:
    """ASGI middleware counting and timing every request by its route template, not raw path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
            REQUESTS.labels(scope["method"], route, str(status)).inc()


def serve_metrics(settings: Settings) -> WSGIServer | None:
    """A /metrics listener apart from the public port, when `gateway_metrics_port` is set."""
    if settings.gateway_metrics_port is None:
        return None
    server, _ = start_http_server(settings.gateway_metrics_port, addr=settings.metrics_host)
    return server
