"""HTTP metrics of the gateway."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "warren_gateway_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "warren_gateway_request_seconds",
    "Time to answer an HTTP request (long-polls included).",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


async def measure(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Count and time every request by its route template, not its raw path."""
    started = time.perf_counter()
    response = await call_next(request)
    route = getattr(request.scope.get("route"), "path", "unmatched")
    LATENCY.labels(request.method, route).observe(time.perf_counter() - started)
    REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    return response
