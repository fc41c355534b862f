"""HTTP routes: parse, authenticate, call the desk, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from gateway.accounts import AccountDesk
from gateway.carts import CartDesk
from gateway.desk import OrderDesk
from gateway.problems import PROBLEM_JSON, ProblemError
from gateway.schemas import (
    ApiKeyOut,
    CartItemRequest,
    CartOut,
    CheckoutRequest,
    CreateUserRequest,
    KeyRevokedOut,
    OrderOut,
    PlaceOrderRequest,
    Problem,
    UserOut,
)


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": Problem, "content": {PROBLEM_JSON: {}}} for s in statuses}


async def authorized_client(request: Request) -> str:
    """The API client behind the request, within its rate limit."""
    client: str = await request.app.state.keys.client(request)
    request.app.state.limiter.take(client)
    return client


async def order_desk(request: Request) -> OrderDesk:
    desk: OrderDesk = request.app.state.desk
    return desk


async def account_desk(request: Request) -> AccountDesk:
    desk: AccountDesk = request.app.state.accounts
    return desk


async def cart_desk(request: Request) -> CartDesk:
    desk: CartDesk = request.app.state.carts
    return desk


Client = Annotated[str, Depends(authorized_client)]
Carts = Annotated[CartDesk, Depends(cart_desk)]
CartId = Annotated[UUID, Path(description="The cart's id, from `POST /carts`.")]
SkuPath = Annotated[str, Path(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$")]
Desk = Annotated[OrderDesk, Depends(order_desk)]
Accounts = Annotated[AccountDesk, Depends(account_desk)]
LongPoll = Annotated[
    float, Query(ge=0, le=30, description="Long-poll up to N seconds for a settled status.")
]
orders = APIRouter(prefix="/orders", tags=["Orders"], responses=_problems(401, 413, 422, 429, 503))
users = APIRouter(prefix="/users", tags=["Users"], responses=_problems(401, 413, 422, 429, 503))
carts = APIRouter(
    prefix="/carts", tags=["Carts"], responses=_problems(401, 403, 413, 422, 429, 503)
)
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


@users.post("", status_code=202, response_model=UserOut, responses=_problems(403))
async def create_user(
    body: CreateUserRequest, response: Response, client: Client, accounts: Accounts
) -> UserOut:
    """Register a user (operators only); ACTIVE once the accounts service accepts the email."""
    user = await accounts.create(client, body)
    response.headers["Location"] = f"/users/{user.user_id}"
    response.headers["Retry-After"] = "1"
    return user


@users.get("/{user_id}", response_model=UserOut, responses=_problems(404))
async def get_user(
    user_id: UUID, client: Client, accounts: Accounts, wait: LongPoll = 0
) -> UserOut:
    """The user: PENDING, ACTIVE, REJECTED (with a reason) or DEACTIVATED."""
    if wait:
        return await accounts.wait(client, str(user_id), wait)
    return await accounts.get(client, str(user_id))


@users.delete("/{user_id}", status_code=202, response_model=UserOut, responses=_problems(404, 409))
async def deactivate_user(user_id: UUID, client: Client, accounts: Accounts) -> UserOut:
    """Deactivate the user: every key is refused at once; accepted orders carry on."""
    return await accounts.deactivate(client, str(user_id))


@users.post(
    "/{user_id}/keys", status_code=201, response_model=ApiKeyOut, responses=_problems(404, 409)
)
async def issue_key(user_id: UUID, client: Client, accounts: Accounts) -> ApiKeyOut:
    """A new API key for an ACTIVE user, shown only in this answer."""
    return await accounts.issue_key(client, str(user_id))


@users.delete(
    "/{user_id}/keys/{key_id}",
    status_code=202,
    response_model=KeyRevokedOut,
    responses=_problems(404),
)
async def revoke_key(
    user_id: UUID, key_id: UUID, client: Client, accounts: Accounts
) -> KeyRevokedOut:
    """Revoke a key: refused everywhere within a couple of seconds."""
    return await accounts.revoke_key(client, str(user_id), str(key_id))


@carts.post("", status_code=201, response_model=CartOut)
async def create_cart(response: Response, client: Client, desk: Carts) -> CartOut:
    """A new, empty cart of the user behind the key."""
    cart = await desk.create(client)
    response.headers["Location"] = f"/carts/{cart.cart_id}"
    return cart


@carts.get("/{cart_id}", response_model=CartOut, responses=_problems(404))
async def get_cart(cart_id: CartId, client: Client, desk: Carts) -> CartOut:
    """The cart: its items with unit prices and line totals, and its total, from the catalog."""
    return await desk.get(client, str(cart_id))


@carts.put("/{cart_id}/items/{sku}", response_model=CartOut, responses=_problems(404, 409))
async def set_cart_item(
    cart_id: CartId, sku: SkuPath, body: CartItemRequest, client: Client, desk: Carts
) -> CartOut:
    """Set how many of a SKU the cart holds (0 removes it); an unknown SKU is `422`."""
    return await desk.set_item(client, str(cart_id), sku, body.quantity)


@carts.delete("/{cart_id}/items/{sku}", response_model=CartOut, responses=_problems(404, 409))
async def remove_cart_item(cart_id: CartId, sku: SkuPath, client: Client, desk: Carts) -> CartOut:
    """Remove a SKU from the cart."""
    return await desk.remove_item(client, str(cart_id), sku)


@carts.post(
    "/{cart_id}/checkout", status_code=202, response_model=OrderOut, responses=_problems(404, 409)
)
async def checkout_cart(
    cart_id: CartId,
    body: CheckoutRequest,
    response: Response,
    client: Client,
    desk: Carts,
    idempotency_key: Annotated[str, Header(min_length=1, max_length=255)],
) -> OrderOut:
    """Order the cart's items: `202` with the order, as `POST /orders` answers.

    The same `Idempotency-Key` returns the same order; another key gets `409`."""
    order, replayed = await desk.checkout(client, str(cart_id), body, idempotency_key)
    response.headers["Location"] = f"/orders/{order.order_id}"
    response.headers["Retry-After"] = "1"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return order


@probes.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@probes.get("/readyz", responses=_problems(503))
async def readyz(request: Request) -> dict[str, Any]:
    """Ready when the database answers and the relay has not failed since it last ran.

    The broker may be away (orders wait in the outbox); a failed start or a crashed relay or
    status projection is not ready until it runs again.
    """
    async with request.app.state.read_engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    messaging = request.app.state.messaging
    if not messaging.carrying:
        detail = "The relay and status projection are restarting after a failure."
        raise ProblemError(503, "Not ready", detail, {"Retry-After": "5"})
    broker = "connected" if messaging.connected else "unavailable"
    parts = {part: "paused" if paused else "running" for part, paused in messaging.paused.items()}
    tasks = {task.name: task.state.value for task in messaging.tasks}
    return {"status": "ready", "database": "ok", "broker": broker, **parts, "tasks": tasks}


@public_metrics.get("/metrics")
async def metrics() -> Response:
    """Prometheus metrics of this process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
