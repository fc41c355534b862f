"""The inventory service through its real bootstrap, on a throw-away SQLite database."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from config.settings import Environment, Settings
from contracts.base import Message, OrderLine, PricedLine
from contracts.envelope import Envelope
from contracts.inventory import ReleaseStock, ReserveStock, StockRejected, StockReserved
from outbox.db import SessionFactory, create_engine, create_tables, session_factory
from outbox.tables import MESSAGING_TABLES
from tests.support.fakes import RecordingUnitOfWork
from workers.inventory.bootstrap import bootstrap, load_catalog
from workers.inventory.model import Shortfall, StockLevel, allocate
from workers.inventory.queries import reservations, stock_levels
from workers.runtime.service import ServiceSpec

CATALOG = [
    {"sku": "PEN-1", "name": "Fountain pen", "unit_price_cents": 150, "stock": 10},
    {"sku": "BOOK-2", "name": "Notebook", "unit_price_cents": 2500, "stock": 3},
    {"sku": "RARE-1", "name": "Signed print", "unit_price_cents": 9900, "stock": 1},
]


@dataclass
class Inventory:
    """The service under test: its spec, its database and what it has published."""

    spec: ServiceSpec
    sessions: SessionFactory
    catalog_path: Path
    sent: list[Envelope[Any]] = field(default_factory=list)

    async def handle(self, message: Message) -> list[Message]:
        """Run the handler for `message` in one committed unit of work; what it published."""
        async with RecordingUnitOfWork(self.sessions) as uow:
            await self.spec.handlers[message.NAME](Envelope(message), uow)
            await uow.commit()
        self.sent.extend(uow.published)
        return [envelope.message for envelope in uow.published]

    async def levels(self) -> dict[str, tuple[int, int]]:
        async with self.sessions() as session:
            return await stock_levels(session)

    async def held(self) -> dict[str, list[tuple[str, int, str]]]:
        async with self.sessions() as session:
            return await reservations(session)


@pytest.fixture
async def inventory(tmp_path: Path) -> AsyncIterator[Inventory]:
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(CATALOG))
    settings = Settings(env=Environment.TEST, var_dir=tmp_path, catalog_path=catalog_path)
    spec = bootstrap(settings)
    engine = create_engine(f"sqlite+inline:///{tmp_path / 'inventory.db'}")
    await create_tables(engine, (*MESSAGING_TABLES, *spec.tables))
    sessions = session_factory(engine)
    assert spec.on_start is not None
    await spec.on_start(sessions)
    yield Inventory(spec, sessions, catalog_path)
    await engine.dispose()


def reserve(order_id: uuid.UUID, *lines: tuple[str, int]) -> ReserveStock:
    items = [OrderLine(sku=sku, quantity=quantity) for sku, quantity in lines]
    return ReserveStock(order_id=order_id, items=items)


def priced(message: Message) -> list[tuple[str, int, int]]:
    assert isinstance(message, StockReserved), message
    return [(line.sku, line.quantity, line.unit_price_cents) for line in message.lines]


async def test_reserve_holds_every_line_at_catalog_prices(inventory: Inventory) -> None:
    order = uuid.uuid4()

    [answer] = await inventory.handle(reserve(order, ("PEN-1", 2), ("BOOK-2", 1)))

    assert isinstance(answer, StockReserved) and answer.order_id == order
    assert priced(answer) == [("BOOK-2", 1, 2500), ("PEN-1", 2, 150)]
    levels = await inventory.levels()
    assert levels["PEN-1"] == (10, 2)
    assert levels["BOOK-2"] == (3, 1)
    assert await inventory.held() == {
        str(order): [("BOOK-2", 1, "reserved"), ("PEN-1", 2, "reserved")]
    }


async def test_the_answer_carries_the_command_correlation(inventory: Inventory) -> None:
    command = Envelope(reserve(uuid.uuid4(), ("PEN-1", 1)), correlation_id="order-flow-1")

    async with RecordingUnitOfWork(inventory.sessions) as uow:
        await inventory.spec.handlers[ReserveStock.NAME](command, uow)
        await uow.commit()

    [answer] = uow.published
    assert (answer.correlation_id, answer.causation_id) == ("order-flow-1", command.message_id)


async def test_reserve_is_all_or_nothing_and_names_the_short_sku(inventory: Inventory) -> None:
    order = uuid.uuid4()

    [answer] = await inventory.handle(reserve(order, ("PEN-1", 2), ("BOOK-2", 4)))

    assert answer == StockRejected(
        order_id=order,
        sku="BOOK-2",
        reason="insufficient stock for BOOK-2: requested 4, available 3",
    )
    assert await inventory.levels() == {"BOOK-2": (3, 0), "PEN-1": (10, 0), "RARE-1": (1, 0)}
    assert await inventory.held() == {}


async def test_an_unknown_sku_is_rejected_by_name(inventory: Inventory) -> None:
    [answer] = await inventory.handle(reserve(uuid.uuid4(), ("PEN-1", 1), ("GHOST-9", 1)))

    assert isinstance(answer, StockRejected)
    assert (answer.sku, answer.reason) == ("GHOST-9", "unknown SKU GHOST-9")
    assert (await inventory.levels())["PEN-1"] == (10, 0)


async def test_repeated_skus_in_one_order_are_reserved_as_one_line(inventory: Inventory) -> None:
    [answer] = await inventory.handle(reserve(uuid.uuid4(), ("PEN-1", 1), ("PEN-1", 2)))

    assert priced(answer) == [("PEN-1", 3, 150)]
    assert (await inventory.levels())["PEN-1"] == (10, 3)


async def test_stock_never_goes_negative_under_concurrent_orders(inventory: Inventory) -> None:
    orders = [reserve(uuid.uuid4(), ("BOOK-2", 1)) for _ in range(8)]

    answers = [m for sent in await asyncio.gather(*map(inventory.handle, orders)) for m in sent]

    assert sum(isinstance(a, StockReserved) for a in answers) == 3
    rejected = [a for a in answers if isinstance(a, StockRejected)]
    assert {a.reason for a in rejected} == {
        "insufficient stock for BOOK-2: requested 1, available 0"
    }
    assert (await inventory.levels())["BOOK-2"] == (3, 3)


async def test_a_repeated_reserve_answers_the_same_without_reserving_twice(
    inventory: Inventory,
) -> None:
    order = uuid.uuid4()
    [first] = await inventory.handle(reserve(order, ("PEN-1", 2), ("RARE-1", 1)))

    [again] = await inventory.handle(reserve(order, ("PEN-1", 2), ("RARE-1", 1)))

    assert again == first
    levels = await inventory.levels()
    assert (levels["PEN-1"], levels["RARE-1"]) == ((10, 2), (1, 1))


async def test_a_rejection_is_remembered_for_the_order(inventory: Inventory) -> None:
    order = uuid.uuid4()
    [first] = await inventory.handle(reserve(order, ("RARE-1", 2)))

    [again] = await inventory.handle(reserve(order, ("RARE-1", 1)))

    assert isinstance(first, StockRejected)
    assert again == first
    assert (await inventory.levels())["RARE-1"] == (1, 0)


async def test_release_gives_stock_back_once(inventory: Inventory) -> None:
    order = uuid.uuid4()
    await inventory.handle(reserve(order, ("RARE-1", 1), ("PEN-1", 4)))

    assert await inventory.handle(ReleaseStock(order_id=order)) == []
    assert await inventory.handle(ReleaseStock(order_id=order)) == []

    assert (await inventory.levels())["RARE-1"] == (1, 0)
    assert (await inventory.levels())["PEN-1"] == (10, 0)
    assert await inventory.held() == {
        str(order): [("PEN-1", 4, "released"), ("RARE-1", 1, "released")]
    }
    [next_order] = await inventory.handle(reserve(uuid.uuid4(), ("RARE-1", 1)))
    assert priced(next_order) == [("RARE-1", 1, 9900)]


async def test_a_release_before_its_reserve_makes_the_reserve_fail(inventory: Inventory) -> None:
    order = uuid.uuid4()
    await inventory.handle(ReleaseStock(order_id=order))

    [answer] = await inventory.handle(reserve(order, ("PEN-1", 1)))

    assert answer == StockRejected(order_id=order, reason="order already cancelled")
    assert (await inventory.levels())["PEN-1"] == (10, 0)
    assert await inventory.held() == {}


async def test_a_reserve_after_release_does_not_reserve_again(inventory: Inventory) -> None:
    order = uuid.uuid4()
    await inventory.handle(reserve(order, ("PEN-1", 1)))
    await inventory.handle(ReleaseStock(order_id=order))

    [answer] = await inventory.handle(reserve(order, ("PEN-1", 1)))

    assert answer == StockRejected(order_id=order, reason="order already cancelled")
    assert (await inventory.levels())["PEN-1"] == (10, 0)


async def test_restart_seeding_keeps_levels_and_adds_new_skus(inventory: Inventory) -> None:
    await inventory.handle(reserve(uuid.uuid4(), ("PEN-1", 4)))
    restocked = [{**item, "stock": 99} for item in CATALOG]
    restocked.append({"sku": "NEW-1", "name": "New item", "unit_price_cents": 100, "stock": 7})
    inventory.catalog_path.write_text(json.dumps(restocked))

    assert inventory.spec.on_start is not None
    await inventory.spec.on_start(inventory.sessions)

    assert await inventory.levels() == {
        "BOOK-2": (3, 0),
        "NEW-1": (7, 0),
        "PEN-1": (10, 4),
        "RARE-1": (1, 0),
    }


def test_allocate_prices_every_line_or_names_the_first_shortfall() -> None:
    stock = {"A-1": StockLevel(unit_price_cents=100, available=2), "B-2": StockLevel(500, 0)}

    fits = allocate([OrderLine(sku="A-1", quantity=2)], stock)
    short = allocate([OrderLine(sku="A-1", quantity=3), OrderLine(sku="B-2", quantity=1)], stock)

    assert fits == [PricedLine(sku="A-1", quantity=2, unit_price_cents=100)]
    assert short == Shortfall("A-1", "insufficient stock for A-1: requested 3, available 2")


def test_the_demo_catalog_has_plenty_one_limited_and_one_sold_out_item() -> None:
    catalog = {item.sku: item for item in load_catalog(Settings().catalog_path)}

    assert catalog["LIMITED-EDITION"].stock == 5
    assert catalog["SOLD-OUT"].stock == 0
    plentiful = [item for item in catalog.values() if item.stock >= 10_000]
    assert len(plentiful) >= 5
