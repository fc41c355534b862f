"""The cart desk: `/carts` requests, answered by the carts service over its HTTP API.

Carts change synchronously (a client wants to see its cart's total at once), so the gateway
calls the service (gateway/calls.py: timeouts, failover, breakers, `503` with `Retry-After`).
Every call is idempotent: the gateway names a new cart, quantities are set, and a checkout's
order id is derived from the cart and the client's `Idempotency-Key`. Before a checkout, the
gateway opens the order's view, so that the saga's status events find it.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from contracts.orders import PlaceOrder
from gateway.accounts import user_of
from gateway.calls import ServiceCalls
from gateway.desk import OrderDesk
from gateway.problems import ProblemError
from gateway.schemas import CartOut, CheckoutRequest, OrderOut
from workers.runtime.discovery import workers


def cart_service() -> str:
    """The service that keeps carts: the one with an HTTP API that places orders."""
    found = [s.name for s in workers() if s.http and PlaceOrder in s.sends]
    if len(found) != 1:
        raise LookupError(f"expected one service with an HTTP API sending PlaceOrder: {found}")
    return found[0]


ORDER_NAMESPACE = uuid.UUID("9b3c6d1e-6a59-4f4e-9a53-0d6f3b3a2c11")
USERS_ONLY = ProblemError(403, "Users only", "Carts belong to users: use a user's API key.")


def order_id_for(cart_id: str, key: str) -> str:
    """The order a checkout makes: the same cart and key always name the same order."""
    return str(uuid.uuid5(ORDER_NAMESPACE, f"{cart_id}\n{key}"))


def _refused(answer: httpx.Response) -> ProblemError:
    """The service's 4xx answer, passed on as the gateway's own problem."""
    try:
        body: dict[str, Any] = answer.json()
    except ValueError:
        body = {}
    title = body.get("title") or "Request refused"
    detail = body.get("detail") if isinstance(body.get("detail"), str) else None
    return ProblemError(answer.status_code, str(title), detail)


class CartDesk:
    """Creates, shows, changes and checks out the carts of the user behind a key."""

    def __init__(self, calls: ServiceCalls, orders: OrderDesk) -> None:
        self._calls, self._orders = calls, orders

    @staticmethod
    def _user(client: str) -> str:
        user = user_of(client)
        if user is None:
            raise USERS_ONLY
        return user

    async def _cart(self, method: str, path: str, body: Any = None) -> CartOut:
        answer = await self._calls.request(method, path, body)
        if answer.status_code >= 400:
            raise _refused(answer)
        return CartOut.model_validate(answer.json())

    async def create(self, client: str) -> CartOut:
        user = self._user(client)
        return await self._cart("PUT", f"/carts/{uuid.uuid4()}", {"user_id": user})

    async def get(self, client: str, cart_id: str) -> CartOut:
        user = self._user(client)
        return await self._cart("GET", f"/carts/{cart_id}?user_id={user}")

    async def set_item(self, client: str, cart_id: str, sku: str, quantity: int) -> CartOut:
        user = self._user(client)
        body = {"user_id": user, "quantity": quantity}
        return await self._cart("PUT", f"/carts/{cart_id}/items/{sku}", body)

    async def remove_item(self, client: str, cart_id: str, sku: str) -> CartOut:
        user = self._user(client)
        return await self._cart("DELETE", f"/carts/{cart_id}/items/{sku}?user_id={user}")

    async def checkout(
        self, client: str, cart_id: str, body: CheckoutRequest, key: str
    ) -> tuple[OrderOut, bool]:
        """The order the checkout made: `(order, replayed)`."""
        user = self._user(client)
        order_id = order_id_for(cart_id, key)
        await self._orders.open_view(client, order_id)
        request = {
            "user_id": user,
            "key": key,
            "order_id": order_id,
            **body.model_dump(mode="json"),
        }
        answer = await self._calls.request("POST", f"/carts/{cart_id}/checkout", request)
        if answer.status_code >= 400:  # refused for good: no order was made under this key
            await self._orders.drop_view(order_id)
            raise _refused(answer)
        done = answer.json()
        order = await self._orders.fill_view(client, order_id, done["lines"])
        return order, bool(done["replayed"])
