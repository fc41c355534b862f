"""HTTP routes: parse, authenticate, call the desk, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from gateway.desk import OrderDesk
from gateway.problems import PROBLEM_JSON
from gateway.schemas import OrderOut, PlaceOrderRequest, Problem


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": Problem, "content": {PROBLEM_JSON: {}}} for s in statuses}


async def authorized_client(request: Request) -> str:
    """The API client behind the request, within its rate limit."""
    client: str = request.app.state.keys.client(request)
    request.app.state.limiter.take(client)
    return client


async def order_desk(request: Request) -> OrderDesk:
    desk: OrderDesk = request.app.state.desk
    return desk


Client = Annotated[str, Depends(authorized_client)]
Desk = Annotated[OrderDesk, Depends(order_desk)]
orders = APIRouter(prefix="/orders", tags=["Orders"], responses=_problems(401, 413, 422, 429, 503))
probes = APIRouter(tags=["operations"])
public_metrics = APIRouter(include_in_schema=False)


@orders.post("", status_code=202, response_model=OrderOut, responses=_problems(422))
async def place_order(
    body: PlaceOrderRequest,
    response: Response,
    client: Client,
    desk: Desk,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
    traceparent: Annotated[str | None, Header(max_length=55)] = None,
) -> OrderOut:
    """Accept an order for processing; poll its `Location` for the outcome."""
    order, created = await desk.place(client, body, idempotency_key, traceparent)
    response.headers["Location"] = f"/orders/{order.order_id}"
    response.headers["Retry-After"] = "1"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return order


@orders.get("/{order_id}", response_model=OrderOut, responses=_problems(404))
async def get_order(
    order_id: UUID,
    client: Client,
    desk: Desk,
    wait: Annotated[
        float, Query(ge=0, le=30, description="Long-poll up to N seconds for a terminal status.")
    ] = 0,
) -> OrderOut:
    """The order's status, reason, items, total and history."""
    if wait:
        return await desk.wait(client, str(order_id), wait)
    return await desk.get(client, str(order_id))


@orders.post(
    "/{order_id}/cancel", status_code=202, response_model=OrderOut, responses=_problems(404, 409)
)
async def cancel_order(order_id: UUID, client: Client, desk: Desk) -> OrderOut:
    """Ask to cancel the order; accepted until its shipment is arranged."""
    return await desk.cancel(client, str(order_id))


@probes.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@probes.get("/readyz", responses=_problems(503))
async def readyz(request: Request) -> dict[str, str]:
    """Ready when the database answers; the broker may be away (orders wait in the outbox)."""
    async with request.app.state.read_engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    messaging = request.app.state.messaging
    broker = "connected" if messaging.connected else "unavailable"
    parts = {part: "paused" if paused else "running" for part, paused in messaging.paused.items()}
    return {"status": "ready", "database": "ok", "broker": broker, **parts}


@public_metrics.get("/metrics")
async def metrics() -> Response:
    """Prometheus metrics of this process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
