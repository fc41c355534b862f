"""`POST /orders` served straight from ASGI: the hot route without FastAPI's per-request work.

FastAPI resolves the route's dependencies, headers and body through generic machinery, and its
middleware stack wraps every request and every `send` in a few layers more: together they cost
more CPU than storing the order does. `PlaceOrderRoute` stands in front of the whole application
and answers a well-formed request itself, the way the FastAPI route and the middlewares do (same
checks, same body, same headers, same problems, same metrics); anything it does not accept as it
is (another content type, no declared length or one over the limit, a body or header that fails
validation) goes on, body and all, to the application, which answers as it always has. The route
stays declared there, so the OpenAPI document is unchanged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.headers import security_headers
from gateway.limits import MAX_BODY_BYTES
from gateway.metrics import LATENCY, REQUESTS
from gateway.problems import problem_for, unexpected
from gateway.schemas import OrderOut, PlaceOrderRequest

PATH = "/orders"
KEY_MAX, TRACEPARENT_MAX = 255, 55  # the FastAPI route's `Header` limits
_JSON = b"application/json"
_SERIALIZER = OrderOut.__pydantic_serializer__
WAIT_MAX = 30.0  # the FastAPI route's `Query(le=30)`
_ONE_ORDER, _ORDER_ROUTE = f"{PATH}/", f"{PATH}/{{order_id}}"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # as str(UUID)
_SECONDS = re.compile(rb"[0-9]{1,2}(\.[0-9]{1,6})?")
# What the front asks of the desk for an authenticated client: the order and extra headers.
DeskCall = Callable[[str], Awaitable[tuple[OrderOut, list[tuple[bytes, bytes]]]]]
_PLACE_TIMED, _PLACED = LATENCY.labels("POST", PATH), REQUESTS.labels("POST", PATH, "202")
_SHOW_TIMED, _SHOWN = (
    LATENCY.labels("GET", _ORDER_ROUTE),
    REQUESTS.labels("GET", _ORDER_ROUTE, "200"),
)


class PlaceOrderRoute:
    """ASGI front of the gateway: `POST /orders` and `GET /orders/{id}` answered here when the
    request is well formed.

    `app` is the application behind it (FastAPI and its middlewares), which gets every other
    request; `gateway` is the FastAPI application whose state holds the keys, the rate limiter
    and the desk.
    """

    def __init__(self, app: ASGIApp, gateway: FastAPI, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.gateway, self.limit = app, gateway, limit

    @staticmethod
    def takes(scope: Scope) -> bool:
        """Whether the request is one this front looks at (the rest go straight on)."""
        if scope["type"] != "http":
            return False
        path, method = scope["path"], scope["method"]
        return (path == PATH and method == "POST") or (
            method == "GET" and path.startswith(_ONE_ORDER)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.takes(scope):
            await self.app(scope, receive, send)
        elif scope["method"] == "POST":
            await self._post(scope, receive, send)
        else:
            await self._get(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = _headers(scope)
        declared = headers.get(b"content-length")
        if (
            headers.get(b"content-type") != _JSON
            or declared is None  # a streamed body: the application counts it against the limit
            or not declared.isdigit()
            or int(declared) > self.limit  # the application refuses it (413)
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client left
            return
        key, traceparent = headers.get(b"idempotency-key"), headers.get(b"traceparent")
        order = _valid(body, key, traceparent)
        if order is None:  # FastAPI's route says what is wrong, in its own words
            await self.app(scope, _replay(body, receive), send)
            return

        async def place(client: str) -> tuple[OrderOut, list[tuple[bytes, bytes]]]:
            placed, created = await self.gateway.state.desk.place(
                client, order, _text(key), _text(traceparent)
            )
            extra = [
                (b"location", f"{PATH}/{placed.order_id}".encode()),
                (b"retry-after", b"1"),
            ]
            if not created:
                extra.append((b"idempotent-replayed", b"true"))
            return placed, extra

        await self._answer(scope, send, headers, place, 202, _PLACED, _PLACE_TIMED, started)

    async def _get(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        order_id, wait = scope["path"][len(_ONE_ORDER) :], _wait(scope["query_string"])
        if wait is None or _UUID.fullmatch(order_id) is None:  # FastAPI's route tells why
            await self.app(scope, receive, send)
            return
        desk = self.gateway.state.desk

        async def show(client: str) -> tuple[OrderOut, list[tuple[bytes, bytes]]]:
            if wait:
                return await desk.wait(client, order_id, wait), []
            return await desk.get(client, order_id), []

        await self._answer(scope, send, _headers(scope), show, 200, _SHOWN, _SHOW_TIMED, started)

    async def _answer(
        self,
        scope: Scope,
        send: Send,
        headers: dict[bytes, bytes],
        call: DeskCall,
        status: int,
        counted: Counter,
        timed: Histogram,
        started: float,
    ) -> None:
        """Authenticate, `call` the desk for the client, answer; measured as `Measure` does."""
        scope["app"] = self.gateway  # as the application would (a problem's `Request` reads it)
        state, added, sent = self.gateway.state, security_headers(scope), 500
        try:
            try:
                client = await state.keys.client_of(
                    _text(headers.get(b"x-api-key")), _text(headers.get(b"authorization"))
                )
                state.limiter.take(client)
                order, extra = await call(client)
            except Exception as exc:
                request = Request(scope)
                answer = await problem_for(request, exc) or await unexpected(request, exc)
                answer.raw_headers.extend(added)
                await answer(scope, _no_body, send)
                sent = answer.status_code
                return
            content = _SERIALIZER.to_json(order, by_alias=True)
            response_headers = [
                (b"content-length", str(len(content)).encode()),
                (b"content-type", _JSON),
                *extra,
                *added,
            ]
            await send(
                {"type": "http.response.start", "status": status, "headers": response_headers}
            )
            await send({"type": "http.response.body", "body": content})
            sent = status
        finally:
            timed.observe(time.perf_counter() - started)
            route = PATH if scope["method"] == "POST" else _ORDER_ROUTE
            (
                counted if sent == status else REQUESTS.labels(scope["method"], route, str(sent))
            ).inc()


class Gateway(FastAPI):
    """The gateway's FastAPI application, with the orders' hot routes answered in front of it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.front: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    def serve_orders_in_front(self) -> None:
        """From now on, a well-formed `POST /orders` or `GET /orders/{id}` skips the stack."""
        self.front = PlaceOrderRoute(self._behind, self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is not None and PlaceOrderRoute.takes(scope):
            await self.front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _behind(self, scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(self, scope, receive, send)


def _wait(query: bytes) -> float | None:
    """The long-poll's seconds from a query of `wait` alone (or none): None for anything else."""
    if not query:
        return 0.0
    name, _, value = query.partition(b"=")
    if name != b"wait" or _SECONDS.fullmatch(value) is None:
        return None
    seconds = float(value)
    return seconds if seconds <= WAIT_MAX else None


def _headers(scope: Scope) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        found.setdefault(name, value)  # the first of a repeated header, as FastAPI's `Header`
    return found


def _valid(body: bytes, key: bytes | None, traceparent: bytes | None) -> PlaceOrderRequest | None:
    if key is not None and not 1 <= len(_text(key) or "") <= KEY_MAX:
        return None
    if traceparent is not None and len(_text(traceparent) or "") > TRACEPARENT_MAX:
        return None
    try:
        return PlaceOrderRequest.model_validate_json(body)
    except ValidationError:
        return None


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body already read, then whatever the client sends next."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
