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

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
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
_TIMED = LATENCY.labels("POST", PATH)
_PLACED = REQUESTS.labels("POST", PATH, "202")


class PlaceOrderRoute:
    """ASGI front of the gateway: `POST /orders` answered here when the request is well formed.

    `app` is the application behind it (FastAPI and its middlewares), which gets every other
    request; `gateway` is the FastAPI application whose state holds the keys, the rate limiter
    and the desk.
    """

    def __init__(self, app: ASGIApp, gateway: FastAPI, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.gateway, self.limit = app, gateway, limit

    @staticmethod
    def takes(scope: Scope) -> bool:
        """Whether the request is one this front looks at (the rest go straight on)."""
        return scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.takes(scope):
            await self.app(scope, receive, send)
            return
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
        scope["app"] = self.gateway  # as the application would (a problem's `Request` reads it)
        status = 500
        try:
            status = await self._place(scope, send, headers, order, key, traceparent)
        finally:
            _TIMED.observe(time.perf_counter() - started)
            (_PLACED if status == 202 else REQUESTS.labels("POST", PATH, str(status))).inc()

    async def _place(
        self,
        scope: Scope,
        send: Send,
        headers: dict[bytes, bytes],
        order: PlaceOrderRequest,
        key: bytes | None,
        traceparent: bytes | None,
    ) -> int:
        state = self.gateway.state
        added = security_headers(scope)
        try:
            client = await state.keys.client_of(
                _text(headers.get(b"x-api-key")), _text(headers.get(b"authorization"))
            )
            state.limiter.take(client)
            placed, created = await state.desk.place(client, order, _text(key), _text(traceparent))
        except Exception as exc:
            request = Request(scope)
            answer = await problem_for(request, exc) or await unexpected(request, exc)
            answer.raw_headers.extend(added)
            await answer(scope, _no_body, send)
            return answer.status_code
        content = _SERIALIZER.to_json(placed, by_alias=True)
        extra = [] if created else [(b"idempotent-replayed", b"true")]
        response_headers = [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", _JSON),
            (b"location", f"{PATH}/{placed.order_id}".encode()),
            (b"retry-after", b"1"),
            *extra,
            *added,
        ]
        await send({"type": "http.response.start", "status": 202, "headers": response_headers})
        await send({"type": "http.response.body", "body": content})
        return 202


class Gateway(FastAPI):
    """The gateway's FastAPI application, with `POST /orders` answered in front of it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.front: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    def serve_place_order_in_front(self) -> None:
        """From now on, a well-formed `POST /orders` skips the application's stack."""
        self.front = PlaceOrderRoute(self._behind, self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is not None and PlaceOrderRoute.takes(scope):
            await self.front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _behind(self, scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(self, scope, receive, send)


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
