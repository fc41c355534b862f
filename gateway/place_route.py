"""`POST /orders` served straight from ASGI: the hot route without FastAPI's per-request work.

FastAPI resolves the route's dependencies, headers and body through generic machinery that
costs more CPU than storing the order does. This middleware answers a well-formed request
itself, the way the FastAPI route does (same checks, same body, same headers, same problems);
anything it does not accept as it is (another content type, a body or header that fails
validation) goes on, body and all, to the FastAPI route, which answers as it always has. The
route stays declared there, so the OpenAPI document is unchanged.
"""

from __future__ import annotations

from fastapi.routing import APIRoute, APIRouter
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.problems import problem_for
from gateway.routes import authorized_client
from gateway.schemas import OrderOut, PlaceOrderRequest

PATH = "/orders"
KEY_MAX, TRACEPARENT_MAX = 255, 55  # the FastAPI route's `Header` limits
_JSON = b"application/json"
_SERIALIZER = OrderOut.__pydantic_serializer__


class PlaceOrderRoute:
    """ASGI middleware: `POST /orders` answered here when the request is well formed."""

    def __init__(self, app: ASGIApp, route: APIRoute | None = None) -> None:
        self.app, self.route = app, route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if headers.get(b"content-type") != _JSON:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client left, or the body was refused as too large (413 sent)
            return
        key, traceparent = headers.get(b"idempotency-key"), headers.get(b"traceparent")
        order = _valid(body, key, traceparent)
        if order is None:  # FastAPI's route says what is wrong, in its own words
            await self.app(scope, _replay(body, receive), send)
            return
        if self.route is not None:
            scope["route"] = self.route  # the metrics label the route by its template
        await self._place(scope, send, order, key, traceparent)

    async def _place(
        self,
        scope: Scope,
        send: Send,
        order: PlaceOrderRequest,
        key: bytes | None,
        traceparent: bytes | None,
    ) -> None:
        request = Request(scope)
        try:
            client = await authorized_client(request)
            placed, created = await request.app.state.desk.place(
                client, order, _text(key), _text(traceparent)
            )
        except Exception as exc:
            answer = await problem_for(request, exc)
            if answer is None:
                raise
            await answer(scope, _no_body, send)
            return
        content = _SERIALIZER.to_json(placed, by_alias=True)
        extra = [] if created else [(b"idempotent-replayed", b"true")]
        response_headers = [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", _JSON),
            (b"location", f"{PATH}/{placed.order_id}".encode()),
            (b"retry-after", b"1"),
            *extra,
        ]
        await send({"type": "http.response.start", "status": 202, "headers": response_headers})
        await send({"type": "http.response.body", "body": content})


def declared_route(router: APIRouter) -> APIRoute:
    """The FastAPI route of `POST /orders`, which documents it and answers what this does not."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path == PATH and "POST" in (route.methods or ()):
            return route
    raise LookupError("the router declares no POST /orders route")


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
