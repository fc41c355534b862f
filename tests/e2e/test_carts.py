"""Carts through the gateway: a user's cart, priced from the catalog, checked out into an order.

Every service is a process on a real broker; the carts service serves its HTTP API beside its
consumer, and the gateway calls it.
"""

from __future__ import annotations

import uuid

from config.settings import DEV_API_KEY
from outbox.db import create_engine, session_factory
from tests.e2e.conftest import Stack
from tests.support.accounts import api_client, create_user, issue_key
from tests.support.harness import wait_for
from tests.support.orders import order_body
from tests.support.system import System
from workers.ops.verify import verify
from workers.runtime.discovery import services

CHECKOUT = {k: v for k, v in order_body().items() if k in ("payment", "shipping_address")}


async def stock_of(system: System, skus: list[str]) -> dict[str, int]:
    """Each SKU's free stock (on hand less reserved), as reported to `warren verify`."""
    facts: dict[str, object] = {}
    for declared in services():
        verification = declared.load("verify")
        if verification is None or declared.name not in system.database_urls:
            continue
        engine = create_engine(system.database_urls[declared.name])
        try:
            async with session_factory(engine)() as session:
                facts |= await verification.collect(session)
        finally:
            await engine.dispose()
    levels = facts["stock_levels"]
    assert isinstance(levels, dict)
    return {sku: levels[sku][0] - levels[sku][1] for sku in skus}


async def test_a_cart_of_two_skus_becomes_one_confirmed_order_with_exactly_its_lines(
    stack: Stack,
) -> None:
    system, url = stack.system, stack.url
    async with api_client(url, DEV_API_KEY) as operator:
        ada = await create_user(operator)
        bob = await create_user(operator)
        ada_key = (await issue_key(operator, ada["user_id"]))["api_key"]
        bob_key = (await issue_key(operator, bob["user_id"]))["api_key"]
        assert (await operator.post("/carts")).status_code == 403  # carts belong to users
    before = await stock_of(system, ["MUG-7", "BOOK-42"])

    async with api_client(url, ada_key) as shopper, api_client(url, bob_key) as other:
        created = await shopper.post("/carts")
        assert created.status_code == 201, created.text
        cart = created.json()
        assert cart["status"] == "OPEN" and cart["items"] == [] and cart["total_cents"] == 0
        path = f"/carts/{cart['cart_id']}"

        await shopper.put(f"{path}/items/MUG-7", json={"quantity": 5})
        await shopper.put(f"{path}/items/BOOK-42", json={"quantity": 1})
        changed = await shopper.put(f"{path}/items/MUG-7", json={"quantity": 2})
        assert changed.status_code == 200, changed.text
        lines = {i["sku"]: i for i in changed.json()["items"]}
        assert {s: i["quantity"] for s, i in lines.items()} == {"MUG-7": 2, "BOOK-42": 1}
        assert lines["MUG-7"]["line_total_cents"] == 2 * lines["MUG-7"]["unit_price_cents"]
        assert changed.json()["total_cents"] == sum(i["line_total_cents"] for i in lines.values())
        unknown = await shopper.put(f"{path}/items/NO-SUCH-SKU", json={"quantity": 1})
        assert unknown.status_code == 422
        assert unknown.headers["content-type"] == "application/problem+json"
        too_many = await shopper.put(f"{path}/items/MUG-7", json={"quantity": 1001})
        assert too_many.status_code == 422
        assert (await other.get(path)).status_code == 404  # not Bob's cart

        empty = (await shopper.post("/carts")).json()
        refused = await shopper.post(
            f"/carts/{empty['cart_id']}/checkout",
            json=CHECKOUT,
            headers={"Idempotency-Key": "empty"},
        )
        assert refused.status_code == 422, refused.text

        key = f"checkout-{uuid.uuid4()}"
        first = await shopper.post(
            f"{path}/checkout", json=CHECKOUT, headers={"Idempotency-Key": key}
        )
        assert first.status_code == 202, first.text
        order = first.json()
        assert first.headers["Location"] == f"/orders/{order['order_id']}"
        again = await shopper.post(
            f"{path}/checkout", json=CHECKOUT, headers={"Idempotency-Key": key}
        )
        assert again.status_code == 202 and again.json()["order_id"] == order["order_id"]
        assert again.headers["Idempotent-Replayed"] == "true"
        other_key = await shopper.post(
            f"{path}/checkout", json=CHECKOUT, headers={"Idempotency-Key": "another"}
        )
        assert other_key.status_code == 409
        late = await shopper.put(f"{path}/items/MUG-7", json={"quantity": 3})
        assert late.status_code == 409
        assert (await shopper.get(path)).json()["status"] == "CHECKED_OUT"

        final = await shopper.get(first.headers["Location"], params={"wait": 25})
        assert final.json()["status"] == "CONFIRMED", final.text
        assert (await other.get(first.headers["Location"])).status_code == 404

    saga = (await system.orders())[order["order_id"]]
    assert saga.customer_id == ada["user_id"]
    assert sorted((i["sku"], i["quantity"]) for i in saga.items) == [
        ("BOOK-42", 1),
        ("MUG-7", 2),
    ]
    after = await stock_of(system, ["MUG-7", "BOOK-42"])
    assert {s: before[s] - after[s] for s in before} == {"MUG-7": 2, "BOOK-42": 1}

    async def clean() -> bool:
        return not await verify(system.settings())

    await wait_for(clean, timeout=30, what="warren verify to find nothing")
