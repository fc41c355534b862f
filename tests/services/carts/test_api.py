"""The carts API through the real bootstrap on a SQLite file: its decisions, without a broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from sqlmodel import select

from config.settings import Settings
from contracts.accounts import UserStatus, UserStatusChanged
from contracts.envelope import Envelope
from outbox.db import create_engine, create_tables, session_factory
from outbox.tables import MESSAGING_TABLES, OutboxMessage
from tests.support.fakes import RecordingUnitOfWork
from workers.carts.bootstrap import bootstrap
from workers.carts.checks import ORDERS_FACT, check, collect
from workers.runtime.service import ServiceSpec

USER = "6f1c1d52-8a0e-4f53-9b8e-2b1d8f5b8a10"
CHECKOUT = {
    "payment": {"token": "tok_visa"},
    "shipping_address": {
        "name": "Ada",
        "line1": "1 Loop Rd",
        "city": "Bristol",
        "postal_code": "BS1",
        "country": "GB",
    },
}


class Carts:
    def __init__(self, spec: ServiceSpec, sessions: Any, http: httpx.AsyncClient) -> None:
        self.spec, self.sessions, self.http = spec, sessions, http

    async def open(self, user: str = USER) -> str:
        cart_id = str(uuid4())
        answer = await self.http.put(f"/carts/{cart_id}", json={"user_id": user})
        assert answer.status_code == 200, answer.text
        return cart_id

    async def set(self, cart_id: str, sku: str, quantity: int, user: str = USER) -> httpx.Response:
        body = {"user_id": user, "quantity": quantity}
        return await self.http.put(f"/carts/{cart_id}/items/{sku}", json=body)

    async def checkout(self, cart_id: str, key: str, order_id: str | None = None) -> httpx.Response:
        body = {"user_id": USER, "key": key, "order_id": order_id or str(uuid4()), **CHECKOUT}
        return await self.http.post(f"/carts/{cart_id}/checkout", json=body)

    async def outbox(self) -> list[OutboxMessage]:
        async with self.sessions() as session:
            return list((await session.exec(select(OutboxMessage))).all())


@pytest.fixture
async def carts(settings: Settings, tmp_path: Path) -> AsyncIterator[Carts]:
    spec = bootstrap(settings)
    engine = create_engine(f"sqlite+inline:///{tmp_path / 'carts.db'}")
    await create_tables(engine, (*MESSAGING_TABLES, *spec.tables))
    sessions = session_factory(engine)
    assert spec.api is not None
    app = spec.api(sessions, lambda: None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://carts") as http:
        yield Carts(spec, sessions, http)
    await engine.dispose()


async def test_a_cart_is_priced_from_the_catalog_and_a_quantity_is_set_not_added(
    carts: Carts,
) -> None:
    cart_id = await carts.open()
    await carts.set(cart_id, "MUG-7", 3)
    shown = (await carts.set(cart_id, "MUG-7", 2)).json()

    [line] = shown["items"]
    assert line["quantity"] == 2 and line["unit_price_cents"] == 850
    assert line["line_total_cents"] == 1700 and shown["total_cents"] == 1700
    assert (await carts.set(cart_id, "MUG-7", 0)).json()["items"] == []
    assert (await carts.set(cart_id, "NOPE-1", 1)).status_code == 422


async def test_someone_elses_cart_is_not_found(carts: Carts) -> None:
    cart_id = await carts.open()
    assert (await carts.set(cart_id, "MUG-7", 1, user="someone-else")).status_code == 404
    assert (await carts.http.get(f"/carts/{cart_id}", params={"user_id": "x"})).status_code == 404


async def test_a_checkout_queues_one_order_and_a_retry_with_its_key_returns_it(
    carts: Carts,
) -> None:
    cart_id = await carts.open()
    await carts.set(cart_id, "MUG-7", 2)
    await carts.set(cart_id, "BOOK-42", 1)

    first = await carts.checkout(cart_id, "k1")
    again = await carts.checkout(cart_id, "k1", order_id=str(uuid4()))
    other = await carts.checkout(cart_id, "k2")
    late = await carts.set(cart_id, "MUG-7", 5)

    assert first.status_code == 200 and first.json()["replayed"] is False
    assert again.json()["order_id"] == first.json()["order_id"] and again.json()["replayed"]
    assert other.status_code == 409 and late.status_code == 409
    assert [m.routing_key for m in await carts.outbox()] == ["orders.PlaceOrder"]
    assert first.json()["lines"] == [
        {"sku": "BOOK-42", "quantity": 1},
        {"sku": "MUG-7", "quantity": 2},
    ]


async def test_an_empty_cart_cannot_be_checked_out(carts: Carts) -> None:
    cart_id = await carts.open()
    assert (await carts.checkout(cart_id, "k")).status_code == 422
    assert await carts.outbox() == []


async def test_a_deactivated_users_open_carts_are_abandoned(carts: Carts) -> None:
    cart_id = await carts.open()
    event = UserStatusChanged(user_id=USER, status=UserStatus.DEACTIVATED)
    async with RecordingUnitOfWork(carts.sessions) as uow:
        await carts.spec.handlers[event.NAME](Envelope(event), uow)
        await uow.commit()

    assert (await carts.set(cart_id, "MUG-7", 1)).status_code == 409
    shown = await carts.http.get(f"/carts/{cart_id}", params={"user_id": USER})
    assert shown.json()["status"] == "ABANDONED"


async def test_verify_finds_a_checked_out_cart_whose_order_differs(carts: Carts) -> None:
    cart_id = await carts.open()
    await carts.set(cart_id, "MUG-7", 2)
    order_id = (await carts.checkout(cart_id, "k")).json()["order_id"]
    async with carts.sessions() as session:
        facts = await collect(session)

    class Order:
        customer_id = USER
        items = [{"sku": "MUG-7", "quantity": 2}]

    class Other(Order):
        items = [{"sku": "MUG-7", "quantity": 3}]

    settings = Settings(_env_file=None)
    assert check(facts | {ORDERS_FACT: {order_id: Order()}}, settings, None) == []
    assert len(check(facts | {ORDERS_FACT: {order_id: Other()}}, settings, None)) == 1
    missing = check(facts | {ORDERS_FACT: {}}, settings, None)
    assert [f.problem for f in missing] == [f"checked out, but order {order_id} does not exist"]


@pytest.mark.parametrize(
    ("method", "path", "body", "where"),
    [
        ("PUT", "/carts/c1", {}, "user_id"),
        ("PUT", "/carts/c1", {"user_id": USER, "extra": 1}, "extra"),
        ("PUT", "/carts/c1/items/MUG-7", {"user_id": USER, "quantity": -1}, "quantity"),
        ("PUT", "/carts/c1/items/mug", {"user_id": USER, "quantity": 1}, "path.sku"),
        ("GET", "/carts/c1", None, "query.user_id"),
        ("POST", "/carts/c1/checkout", {"user_id": USER, "key": "k"}, "order_id"),
    ],
)
async def test_invalid_input_is_a_problem_naming_the_field_and_changes_nothing(
    carts: Carts, method: str, path: str, body: dict[str, Any] | None, where: str
) -> None:
    answer = await carts.http.request(method, path, json=body)

    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 422 and where in answer.json()["detail"]
    assert await carts.outbox() == []


async def test_the_openapi_document_describes_every_route_and_its_models(carts: Carts) -> None:
    document = (await carts.http.get("/openapi.json")).json()

    operations = {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }
    assert operations == {
        "PUT /carts/{cart_id}",
        "GET /carts/{cart_id}",
        "PUT /carts/{cart_id}/items/{sku}",
        "DELETE /carts/{cart_id}/items/{sku}",
        "POST /carts/{cart_id}/checkout",
    }
    schemas = document["components"]["schemas"]
    assert {"CartOut", "CheckedOut", "Checkout", "OpenCart", "SetQuantity"} <= set(schemas)
    assert schemas["SetQuantity"]["properties"]["quantity"]["maximum"] > 0
