"""The gateway's status projection: a view moves forward by sequence only, its history gains
each new status once, and long-polls are woken only by a move. On every backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.envelope import Envelope
from contracts.orders import OrderStatus, OrderStatusChanged
from gateway.desk import OrderDesk
from gateway.notifier import Notifier
from gateway.projection import status_changed_handler
from gateway.tables import TABLES
from outbox.db import create_tables, session_factory
from outbox.unit_of_work import UnitOfWork
from tests.conftest import BACKENDS, Backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every backend: the row lock that orders concurrent statuses is PostgreSQL's."""
    chosen: Backend = request.param
    return chosen


class Woken(Notifier):
    """A notifier that records what it was told."""

    def __init__(self) -> None:
        super().__init__()
        self.told: list[tuple[str, Any]] = []

    def changed(self, order_id: str, status: Any) -> None:
        self.told.append((order_id, status))


@pytest.fixture
async def gateway_engine(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    await create_tables(engine, TABLES)
    yield engine


class Projection:
    def __init__(self, engine: AsyncEngine) -> None:
        self.sessions = session_factory(engine)
        self.woken = Woken()
        self.handler = status_changed_handler(self.woken)
        self.desk = OrderDesk(self.sessions, self.sessions, self.woken, lambda: None)

    async def apply(
        self, order_id: str, status: OrderStatus, sequence: int, total: int | None = None
    ) -> None:
        event = OrderStatusChanged(
            order_id=uuid.UUID(order_id), status=status, sequence=sequence, total_cents=total
        )
        async with UnitOfWork(self.sessions) as uow:
            await self.handler(Envelope(event), uow)
            await uow.commit()

    async def history(self, order_id: str) -> list[tuple[int, str]]:
        async with self.sessions() as session:
            found = await session.exec(  # type: ignore[call-overload]
                text(
                    "SELECT sequence, status FROM order_view_history "
                    "WHERE order_id = :id ORDER BY sequence"
                ),
                params={"id": order_id},
            )
            return [(row.sequence, row.status) for row in found]


@pytest.fixture
async def projection(gateway_engine: AsyncEngine) -> Projection:
    return Projection(gateway_engine)


async def placed(projection: Projection) -> str:
    await projection.desk.open_view("dev", order_id := str(uuid.uuid4()))
    return order_id


async def test_statuses_in_order_move_the_view_and_extend_the_history(
    projection: Projection,
) -> None:
    order_id = await placed(projection)

    await projection.apply(order_id, OrderStatus.STOCK_RESERVED, 1, total=1200)
    await projection.apply(order_id, OrderStatus.PAID, 2)
    await projection.apply(order_id, OrderStatus.CONFIRMED, 3)

    order = await projection.desk.get("dev", order_id)
    assert order.status == OrderStatus.CONFIRMED and order.total.amount_cents == 1200
    assert await projection.history(order_id) == [
        (0, "PENDING"),
        (1, "STOCK_RESERVED"),
        (2, "PAID"),
        (3, "CONFIRMED"),
    ]
    assert [status for _, status in projection.woken.told] == [
        OrderStatus.STOCK_RESERVED,
        OrderStatus.PAID,
        OrderStatus.CONFIRMED,
    ]


async def test_old_duplicate_and_unknown_statuses_change_nothing_and_wake_nobody(
    projection: Projection,
) -> None:
    order_id = await placed(projection)
    await projection.apply(order_id, OrderStatus.PAID, 2)
    projection.woken.told.clear()

    await projection.apply(order_id, OrderStatus.STOCK_RESERVED, 1)  # overtaken
    await projection.apply(order_id, OrderStatus.PAID, 2)  # a duplicate
    await projection.apply(str(uuid.uuid4()), OrderStatus.PAID, 5)  # no such view

    assert (await projection.desk.get("dev", order_id)).status == OrderStatus.PAID
    assert await projection.history(order_id) == [(0, "PENDING"), (2, "PAID")]
    assert projection.woken.told == []


async def test_a_newer_sequence_with_the_same_status_moves_the_view_but_adds_no_history(
    projection: Projection,
) -> None:
    order_id = await placed(projection)
    await projection.apply(order_id, OrderStatus.STOCK_RESERVED, 1, total=900)

    await projection.apply(order_id, OrderStatus.STOCK_RESERVED, 2, total=800)

    order = await projection.desk.get("dev", order_id)
    assert order.total.amount_cents == 800
    assert await projection.history(order_id) == [(0, "PENDING"), (1, "STOCK_RESERVED")]
    assert len(projection.woken.told) == 2
