"""`POST /orders` as the desk stores it: concurrent requests share a transaction, and still each
gets its own order, its key's first order, or its own refusal.

The guarantees are the database's, so they are proven on both SQLite drivers and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.desk import OrderDesk
from gateway.notifier import Notifier
from gateway.placing import _KEYS_OF, BATCH_LIMIT
from gateway.problems import ProblemError
from gateway.schemas import PlaceOrderRequest
from gateway.tables import TABLES
from outbox.db import create_tables, session_factory
from outbox.tables import OUTBOX
from tests.conftest import BACKENDS, SQLITE_BACKENDS, Backend
from tests.support.orders import order_body


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every backend, PostgreSQL included: another gateway may race on its keys there."""
    chosen: Backend = request.param
    return chosen


class Wakes:
    """Counts the relay wake-ups (one per commit that added outbox rows)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
async def gateway_engine(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    await create_tables(engine, TABLES)
    yield engine


def desk_on(engine: AsyncEngine, wakes: Wakes) -> OrderDesk:
    sessions = session_factory(engine)
    return OrderDesk(sessions, sessions, Notifier(), wakes)


def request(quantity: int = 1) -> PlaceOrderRequest:
    return PlaceOrderRequest.model_validate(order_body("tok_visa", "MUG-7", quantity))


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def stored(engine: AsyncEngine) -> dict[str, int]:
    tables = ("order_view", "order_view_history", "idempotency_key", "outbox_message")
    return {table: await count(engine, table) for table in tables}


async def test_concurrent_orders_each_get_their_own_order_and_fewer_commits(
    gateway_engine: AsyncEngine,
) -> None:
    # given a desk, when 40 clients place orders at once, half of them with keys
    wakes = Wakes()
    desk = desk_on(gateway_engine, wakes)
    answers = await asyncio.gather(
        *(desk.place("dev", request(), f"key-{i}" if i % 2 else None) for i in range(40))
    )

    # then each has its own new order, stored with its history, key and PlaceOrder
    assert all(created for _, created in answers)
    assert len({order.order_id for order, _ in answers}) == 40
    assert [h.reason for h in answers[0][0].history] == ["accepted"]
    assert await stored(gateway_engine) == {
        "order_view": 40,
        "order_view_history": 40,
        "idempotency_key": 20,
        "outbox_message": 40,
    }
    # and they shared transactions: fewer commits than orders
    assert 1 <= wakes.count < 40


async def test_one_key_sent_concurrently_makes_one_order_and_replays_it(
    gateway_engine: AsyncEngine,
) -> None:
    desk = desk_on(gateway_engine, Wakes())
    answers = await asyncio.gather(*(desk.place("dev", request(), "same") for _ in range(10)))

    assert len({order.order_id for order, _ in answers}) == 1
    assert sum(created for _, created in answers) == 1
    assert (await stored(gateway_engine))["outbox_message"] == 1
    # and a retry after the commit replays the stored order, with its history
    again, created = await desk.place("dev", request(), "same")
    assert not created and again.order_id == answers[0][0].order_id
    assert [h.status for h in again.history] == ["PENDING"]


async def test_a_reused_key_with_another_body_is_refused_alone(
    gateway_engine: AsyncEngine,
) -> None:
    desk = desk_on(gateway_engine, Wakes())
    first, _ = await desk.place("dev", request(), "used")

    # when, among other orders, one reuses the key with another body (in the same batch too)
    outcomes: list[Any] = await asyncio.gather(
        desk.place("dev", request(quantity=2), "used"),
        desk.place("dev", request(), "fresh"),
        desk.place("dev", request(quantity=3), "fresh"),
        desk.place("other", request(quantity=2), "used"),
        return_exceptions=True,
    )

    # then only the reuses are refused (422); the others, and another client's key, are stored
    refused = [o for o in outcomes if isinstance(o, ProblemError)]
    assert [r.status for r in refused] == [422, 422]
    assert isinstance(outcomes[0], ProblemError) and isinstance(outcomes[2], ProblemError)
    assert outcomes[1][1] and outcomes[3][1]
    assert outcomes[3][0].order_id != first.order_id
    assert (await stored(gateway_engine))["order_view"] == 3


async def test_more_waiting_requests_than_a_batch_holds_are_all_stored(
    gateway_engine: AsyncEngine,
) -> None:
    desk = desk_on(gateway_engine, Wakes())
    n = BATCH_LIMIT * 2 + 3
    answers = await asyncio.gather(*(desk.place("dev", request(), f"k{i}") for i in range(n)))

    assert len({order.order_id for order, _ in answers}) == n
    assert (await stored(gateway_engine))["idempotency_key"] == n


async def test_a_failing_database_fails_the_waiting_requests_and_stores_nothing(
    gateway_engine: AsyncEngine,
) -> None:
    # given the outbox table is gone, so every transaction fails at its commit
    desk = desk_on(gateway_engine, Wakes())
    async with gateway_engine.begin() as connection:
        await connection.execute(text("DROP TABLE outbox_message"))

    outcomes = await asyncio.gather(
        *(desk.place("dev", request(), f"k{i}") for i in range(5)), return_exceptions=True
    )

    assert all(isinstance(o, Exception) and not isinstance(o, ProblemError) for o in outcomes)
    assert await count(gateway_engine, "order_view") == 0
    assert await count(gateway_engine, "idempotency_key") == 0
    # and the desk keeps working once the database does
    async with gateway_engine.begin() as connection:
        await connection.run_sync(OUTBOX.create)
    order, created = await desk.place("dev", request(), "k0")
    assert created and order.status == "PENDING"


async def test_two_gateways_on_one_database_make_one_order_of_one_key(
    gateway_engine: AsyncEngine,
) -> None:
    # given two gateways' desks on one database (on PostgreSQL both may read "unknown key")
    first, second = desk_on(gateway_engine, Wakes()), desk_on(gateway_engine, Wakes())

    # when each gets the same keys at once, in batches with other orders
    answers = await asyncio.gather(
        *(
            desk.place("dev", request(), f"shared-{i}")
            for i in range(5)
            for desk in (first, second)
        ),
        *(desk.place("dev", request(), None) for desk in (first, second)),
    )

    # then each key made one order, which the other gateway replayed
    assert await count(gateway_engine, "idempotency_key") == 5
    assert await count(gateway_engine, "order_view") == 7
    assert sum(not created for _, created in answers) == 5
    keyed = answers[:10]
    assert all(keyed[i][0].order_id == keyed[i + 1][0].order_id for i in range(0, 10, 2))


async def test_a_key_is_its_clients_own_even_in_a_batch_of_several_clients(
    gateway_engine: AsyncEngine,
) -> None:
    # given client a's key k1 and client b's key k2, each already used
    desk = desk_on(gateway_engine, Wakes())
    first_a, _ = await desk.place("a", request(), "k1")
    first_b, _ = await desk.place("b", request(), "k2")

    # when, in one batch, a sends k2, b sends k1, and each repeats its own
    answers = await asyncio.gather(
        desk.place("a", request(), "k2"),
        desk.place("b", request(), "k1"),
        desk.place("a", request(), "k1"),
        desk.place("b", request(), "k2"),
    )

    # then the other client's keys made new orders, and each client's own key replayed
    assert [created for _, created in answers] == [True, True, False, False]
    assert answers[2][0].order_id == first_a.order_id
    assert answers[3][0].order_id == first_b.order_id
    assert await count(gateway_engine, "idempotency_key") == 4


@pytest.mark.parametrize("backend", SQLITE_BACKENDS, indirect=True)  # SQLite's query plan
async def test_the_key_lookup_searches_the_primary_key_on_sqlite(
    gateway_engine: AsyncEngine,
) -> None:
    # given the batch's key lookup, as SQLite would run it for two clients and three keys
    params = {"clients": ["a", "b"], "keys": ["k1", "k2", "k3"]}
    expanded = _KEYS_OF.compile(dialect=gateway_engine.dialect).construct_expanded_state(params)
    values = tuple(expanded.parameters[name] for name in expanded.positiontup or ())

    # when SQLite plans it
    async with gateway_engine.connect() as connection:
        explain = f"EXPLAIN QUERY PLAN {expanded.statement}"
        plan = (await connection.exec_driver_sql(explain, values)).all()

    # then it searches the primary key (a scan would read every key of the last day)
    details = " ".join(str(row[-1]) for row in plan)
    assert "SEARCH idempotency_key USING INDEX" in details, details
