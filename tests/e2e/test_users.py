"""Users and their API keys through the gateway: every service a process, a real broker."""

from __future__ import annotations

import time

from config.settings import DEV_API_KEY
from tests.e2e.conftest import Stack
from tests.support.accounts import api_client, create_user, email, issue_key
from tests.support.harness import wait_for
from tests.support.orders import order_body
from workers.ops.verify import verify

REFUSED_WITHIN_S = 2.0


async def refused_within(url: str, key: str, path: str) -> float:
    """Seconds until `key` gets 401 on `path`, checked every 50 ms."""
    started = time.monotonic()
    async with api_client(url, key) as c:

        async def refused() -> bool:
            return (await c.get(path)).status_code == 401

        await wait_for(refused, timeout=10, what=f"401 on {path}")
    return time.monotonic() - started


async def test_users_keys_and_their_orders_end_to_end(stack: Stack) -> None:
    system, url = stack.system, stack.url
    async with api_client(url, DEV_API_KEY) as operator:
        # an operator creates a user; the same email again ends REJECTED
        address = email()
        ada = await create_user(operator, address)
        assert ada["status"] == "ACTIVE" and ada["email"] == address
        twin = await create_user(operator, address.upper())
        assert twin["status"] == "REJECTED" and twin["reason"] == "email already registered"
        bob = await create_user(operator)

        # a key works at once, shown once; the user sees only themselves
        key = await issue_key(operator, ada["user_id"])
        async with api_client(url, key["api_key"]) as ada_client:
            me = await ada_client.get(f"/users/{ada['user_id']}")
            assert me.status_code == 200 and me.json()["user_id"] == ada["user_id"]
            assert (await ada_client.get(f"/users/{bob['user_id']}")).status_code == 404
            forbidden = await ada_client.post("/users", json={"email": email(), "name": "X"})
            assert forbidden.status_code == 403

            # a user's own orders: hers to read, nobody else's
            placed = await ada_client.post("/orders", json=order_body())
            assert placed.status_code == 202, placed.text
            order_url = placed.headers["Location"]
            bob_key = await issue_key(operator, bob["user_id"])
            async with api_client(url, bob_key["api_key"]) as bob_client:
                assert (await bob_client.get(order_url)).status_code == 404
                assert (await bob_client.get(f"/users/{ada['user_id']}")).status_code == 404

            # a second key of her own, then revoked: refused everywhere within 2 s
            spare = await issue_key(ada_client, ada["user_id"])
            revoked = await ada_client.delete(f"/users/{ada['user_id']}/keys/{spare['key_id']}")
            assert revoked.status_code == 202
        took = await refused_within(url, spare["api_key"], order_url)
        assert took < REFUSED_WITHIN_S, f"a revoked key was accepted for {took:.2f}s"

        # deactivation: every key refused within 2 s; her accepted order carries on
        gone = await operator.delete(f"/users/{ada['user_id']}")
        assert gone.status_code == 202 and gone.json()["status"] == "DEACTIVATED"
        took = await refused_within(url, key["api_key"], order_url)
        assert took < REFUSED_WITHIN_S, f"a deactivated user's key was accepted for {took:.2f}s"
        shown = await operator.get(f"/users/{ada['user_id']}")
        assert shown.json()["status"] == "DEACTIVATED"

    await system.wait_terminal([order_url.rsplit("/", 1)[1]])
    orders = await system.orders()
    assert orders[order_url.rsplit("/", 1)[1]].status == "CONFIRMED"

    async def clean() -> bool:
        return not await verify(system.settings())

    await wait_for(clean, timeout=30, what="warren verify to find nothing")
    assert await verify(system.settings()) == []
