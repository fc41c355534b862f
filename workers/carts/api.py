"""The carts HTTP API, for the gateway (not for clients: it trusts the `user_id` it is given).

Every call is idempotent, so the gateway may retry it on another instance: a cart is created
under the id the caller chose, a quantity is set rather than added, and a checkout carries the
client's idempotency key and the order id the gateway derived from it. A checkout marks the cart
CHECKED_OUT and queues `PlaceOrder` in the outbox in one transaction.

The API runs on Starlette alone: FastAPI would add some 5 MiB to the worker (the OpenAPI models
`import fastapi` builds) for five internal routes. Bodies and parameters are validated by the
same pydantic models; any refusal, invalid input included, is a problem+json answer; the
routes' table below also gives the API's OpenAPI document (`GET /openapi.json`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.json_schema import models_json_schema
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config.settings import Settings
from contracts.base import Address, Currency, OrderLine, Sku
from contracts.envelope import Envelope
from contracts.orders import PaymentMethod, PlaceOrder
from outbox.db import SessionFactory
from outbox.tables import core_table, utcnow
from outbox.unit_of_work import UnitOfWork
from workers.carts.model import MAX_LINES, MAX_QUANTITY, CartStatus, Product, catalog
from workers.carts.tables import Cart, CartLine

UserId = Annotated[str, Field(min_length=1, max_length=64)]
CARTS, LINES = core_table(Cart), core_table(CartLine)


class Refused(Exception):
    """A request the cart's state or the catalog refuses: its status, title and detail."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenCart(_In):
    user_id: UserId


class SetQuantity(_In):
    user_id: UserId
    quantity: Annotated[int, Field(ge=0, le=MAX_QUANTITY)]


class Checkout(_In):
    user_id: UserId
    key: Annotated[str, Field(min_length=1, max_length=255)]
    order_id: str
    payment: PaymentMethod
    shipping_address: Address
    currency: Currency = "EUR"


class LineOut(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price_cents: int
    line_total_cents: int


class CartOut(BaseModel):
    cart_id: str
    status: CartStatus
    items: list[LineOut]
    total_cents: int
    order_id: str | None = None


class CheckedOut(BaseModel):
    cart: CartOut
    order_id: str
    lines: list[OrderLine]
    replayed: bool


_CLAIM = (
    update(CARTS)
    .where(CARTS.c.cart_id == bindparam("id"), CARTS.c.status == CartStatus.OPEN.value)
    .values(updated_at=bindparam("now"))
)
_LINES = select(LINES.c.sku, LINES.c.quantity).where(LINES.c.cart_id == bindparam("id"))


PROBLEM = "application/problem+json"
_M = TypeVar("_M", bound=BaseModel)
_SKU: TypeAdapter[str] = TypeAdapter(Sku)
_USER: TypeAdapter[str] = TypeAdapter(UserId)


def _invalid(exc: ValidationError, where: str | None = None) -> Refused:
    """A validation error as a 422 naming the first field at fault (`where`, or its location)."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = where or ".".join(str(part) for part in first["loc"]) or "body"
    return Refused(422, "Invalid request", f"{where}: {first['msg']}")


async def _body(request: Request, model: type[_M]) -> _M:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _checked(adapter: TypeAdapter[str], value: str | None, where: str) -> str:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        raise _invalid(exc, where) from exc


def _user(request: Request) -> str:
    return _checked(_USER, request.query_params.get("user_id"), "query.user_id")


def _sku(request: Request) -> str:
    return _checked(_SKU, request.path_params["sku"], "path.sku")


@dataclass(frozen=True)
class _Operation:
    """One route: what it is called, takes and answers; serves the app and its OpenAPI document."""

    method: str
    path: str
    summary: str
    handler: Callable[[Request], Awaitable[BaseModel]]
    answer: type[BaseModel]
    body: type[BaseModel] | None = None
    user_in_query: bool = False

    def endpoint(self) -> Callable[[Request], Awaitable[Response]]:
        async def answered(request: Request) -> Response:
            try:
                model = await self.handler(request)
            except Refused as exc:
                body = {"type": "about:blank", "title": exc.title, "status": exc.status}
                return JSONResponse(
                    body | {"detail": exc.detail}, status_code=exc.status, media_type=PROBLEM
                )
            return JSONResponse(model.model_dump(mode="json"))

        return answered

    def openapi(self) -> dict[str, Any]:
        def ref(model: type[BaseModel]) -> dict[str, Any]:
            return {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}

        names = [part[1:-1] for part in self.path.split("/") if part.startswith("{")]
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in names
        ]
        if self.user_in_query:
            schema = {"type": "string", "minLength": 1, "maxLength": 64}
            parameters.append(
                {"name": "user_id", "in": "query", "required": True, "schema": schema}
            )
        operation: dict[str, Any] = {
            "summary": self.summary,
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "The cart",
                    "content": {"application/json": ref(self.answer)},
                },
                "default": {"description": "A refusal", "content": {PROBLEM: {}}},
            },
        }
        if self.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": ref(self.body)},
            }
        return operation


def _openapi(operations: list[_Operation]) -> dict[str, Any]:
    models = {m for op in operations for m in (op.answer, op.body) if m is not None}
    _, schemas = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = op.openapi()
    return {
        "openapi": "3.1.0",
        "info": {"title": "Warren carts (internal)", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {})},
    }


def create_api(settings: Settings) -> Callable[[SessionFactory, Callable[[], None]], Any]:
    """The API factory the runtime calls with the worker's sessions and relay wake-up."""

    def build(sessions: SessionFactory, wake: Callable[[], None]) -> Starlette:
        return _app(sessions, wake, catalog(settings.catalog_path))

    return build


def _app(
    sessions: SessionFactory, wake: Callable[[], None], products: dict[str, Product]
) -> Starlette:
    def uow() -> UnitOfWork:
        return UnitOfWork(sessions, on_commit=wake)

    async def show(session: AsyncSession, cart: Any) -> CartOut:
        lines = (await session.exec(_LINES, params={"id": cart.cart_id})).all()  # type: ignore[call-overload]
        items = []
        for sku, quantity in sorted(lines):
            product = products[sku]
            price = product.unit_price_cents
            items.append(
                LineOut(
                    sku=sku,
                    name=product.name,
                    quantity=quantity,
                    unit_price_cents=price,
                    line_total_cents=price * quantity,
                )
            )
        total = sum(i.line_total_cents for i in items)
        return CartOut(
            cart_id=cart.cart_id,
            status=CartStatus(cart.status),
            items=items,
            total_cents=total,
            order_id=cart.order_id,
        )

    async def owned(session: AsyncSession, cart_id: str, user_id: str) -> Cart:
        cart = await session.get(Cart, cart_id)
        if cart is None or cart.user_id != user_id:
            raise Refused(404, "Cart not found", "No cart with this id belongs to you.")
        return cart

    async def claim_open(session: AsyncSession, cart: Cart) -> None:
        """Take the cart's row for this transaction; refused unless it is OPEN."""
        claimed = await session.exec(_CLAIM, params={"id": cart.cart_id, "now": utcnow()})
        if claimed.rowcount != 1:
            await session.refresh(cart)
            raise Refused(409, "Cart is not open", f"The cart is {cart.status}; it cannot change.")

    async def open_cart(request: Request) -> CartOut:
        cart_id, body = request.path_params["cart_id"], await _body(request, OpenCart)
        async with uow() as work:
            cart = await work.session.get(Cart, cart_id)
            if cart is None:
                now = utcnow()
                cart = Cart(
                    cart_id=cart_id,
                    user_id=body.user_id,
                    status=CartStatus.OPEN,
                    created_at=now,
                    updated_at=now,
                )
                work.session.add(cart)
                try:
                    await work.session.flush()
                except IntegrityError as exc:  # a retry of this call on another instance won
                    raise Refused(409, "Cart exists", "Try reading it.") from exc
            elif cart.user_id != body.user_id:
                raise Refused(409, "Cart exists", "A cart with this id exists.")
            shown = await show(work.session, cart)
            await work.commit()
        return shown

    async def get_cart(request: Request) -> CartOut:
        cart_id, user_id = request.path_params["cart_id"], _user(request)
        async with sessions() as session:
            return await show(session, await owned(session, cart_id, user_id))

    async def set_item(request: Request) -> CartOut:
        cart_id, sku = request.path_params["cart_id"], _sku(request)
        body = await _body(request, SetQuantity)
        if sku not in products:
            raise Refused(422, "Unknown SKU", f"{sku} is not in the catalog.")
        async with uow() as work:
            cart = await owned(work.session, cart_id, body.user_id)
            await claim_open(work.session, cart)
            line = await work.session.get(CartLine, (cart_id, sku))
            if body.quantity == 0:
                if line is not None:
                    await work.session.delete(line)
            elif line is None:
                count = len((await work.session.exec(_LINES, params={"id": cart_id})).all())  # type: ignore[call-overload]
                if count >= MAX_LINES:
                    raise Refused(422, "Cart is full", f"A cart holds at most {MAX_LINES} SKUs.")
                work.session.add(CartLine(cart_id=cart_id, sku=sku, quantity=body.quantity))
            else:
                line.quantity = body.quantity
                work.session.add(line)
            await work.session.flush()
            shown = await show(work.session, cart)
            await work.commit()
        return shown

    async def remove_item(request: Request) -> CartOut:
        cart_id, sku, user_id = (
            request.path_params["cart_id"],
            request.path_params["sku"],
            _user(request),
        )
        async with uow() as work:
            cart = await owned(work.session, cart_id, user_id)
            await claim_open(work.session, cart)
            gone = delete(LINES).where(LINES.c.cart_id == cart_id, LINES.c.sku == sku)
            await work.session.exec(gone)
            shown = await show(work.session, cart)
            await work.commit()
        return shown

    async def checkout(request: Request) -> CheckedOut:
        cart_id, body = request.path_params["cart_id"], await _body(request, Checkout)
        async with uow() as work:
            cart = await owned(work.session, cart_id, body.user_id)
            if cart.status == CartStatus.CHECKED_OUT and cart.checkout_key == body.key:
                assert cart.order_id is not None and cart.ordered is not None
                lines = [OrderLine(**line) for line in cart.ordered]
                return CheckedOut(
                    cart=await show(work.session, cart),
                    order_id=cart.order_id,
                    lines=lines,
                    replayed=True,
                )
            await claim_open(work.session, cart)
            rows = (await work.session.exec(_LINES, params={"id": cart_id})).all()  # type: ignore[call-overload]
            if not rows:
                raise Refused(422, "Cart is empty", "Add an item before checking out.")
            lines = [OrderLine(sku=sku, quantity=quantity) for sku, quantity in sorted(rows)]
            cart.status, cart.checkout_key, cart.order_id = (
                CartStatus.CHECKED_OUT,
                body.key,
                body.order_id,
            )
            cart.ordered = [line.model_dump() for line in lines]
            cart.updated_at = utcnow()
            work.session.add(cart)
            command = PlaceOrder(
                order_id=body.order_id,
                customer_id=body.user_id,
                items=lines,
                payment=body.payment,
                shipping_address=body.shipping_address,
                currency=body.currency,
            )
            work.publish(Envelope(command, correlation_id=body.order_id))
            await work.session.flush()
            shown = await show(work.session, cart)
            await work.commit()
        return CheckedOut(cart=shown, order_id=body.order_id, lines=lines, replayed=False)

    cart, item = "/carts/{cart_id}", "/carts/{cart_id}/items/{sku}"
    operations = [
        _Operation("PUT", cart, "Open a cart", open_cart, CartOut, body=OpenCart),
        _Operation("GET", cart, "Show a cart", get_cart, CartOut, user_in_query=True),
        _Operation("PUT", item, "Set a SKU's quantity", set_item, CartOut, body=SetQuantity),
        _Operation("DELETE", item, "Remove a SKU", remove_item, CartOut, user_in_query=True),
        _Operation("POST", f"{cart}/checkout", "Check out", checkout, CheckedOut, body=Checkout),
    ]
    document = _openapi(operations)

    async def openapi(_request: Request) -> Response:
        return JSONResponse(document)

    routes = [Route(op.path, op.endpoint(), methods=[op.method]) for op in operations]
    return Starlette(routes=[*routes, Route("/openapi.json", openapi, methods=["GET"])])
