"""Inventory under concurrent orders on every backend: never oversold, given back exactly once.

On PostgreSQL the handlers run in parallel transactions, so this is where the row locks (the
order first, then the stock items in SKU order) are what keeps the counts right.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Environment, Settings
from contracts.base import Message, OrderLine
from contracts.envelope import Envelope
from contracts.inventory import ReleaseStock, ReserveStock, StockRejected, StockReserved
from outbox.db import SessionFactory, create_tables, session_factory
from tests.support.fakes import RecordingUnitOfWork
from workers.inventory.bootstrap import bootstrap
from workers.inventory.queries import stock_levels
from workers.runtime.service import ServiceSpec

CATALOG = [
    {"sku": "PEN-1", "name": "Fountain pen", "unit_price_cents": 150, "stock": 50},
    {"sku": "BOOK-2", "name": "Notebook", "unit_price_cents": 2500, "stock": 3},
]


async def _handle(spec: ServiceSpec, sessions: SessionFactory, message: Message) -> list[Message]:
    async with RecordingUnitOfWork(sessions) as uow:
        await spec.handlers[message.NAME](Envelope(message), uow)
        await uow.commit()
    return [envelope.message for envelope in uow.published]


async def test_concurrent_orders_never_oversell_and_releases_give_back_once(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps(CATALOG))
    spec = bootstrap(Settings(env=Environment.TEST, var_dir=tmp_path, catalog_path=catalog))
    await create_tables(engine, spec.tables)
    sessions = session_factory(engine)
    assert spec.on_start is not None
    await spec.on_start(sessions)
    orders = [uuid.uuid4() for _ in range(8)]
    lines = [OrderLine(sku="PEN-1", quantity=2), OrderLine(sku="BOOK-2", quantity=1)]

    answers = await asyncio.gather(
        *(_handle(spec, sessions, ReserveStock(order_id=o, items=lines)) for o in orders)
    )
    reserved = [
        o for o, [answer] in zip(orders, answers, strict=True) if isinstance(answer, StockReserved)
    ]
    assert len(reserved) == 3
    assert all(
        isinstance(answer, StockRejected) for [answer] in answers if answer.order_id not in reserved
    )
    async with sessions() as session:
        assert await stock_levels(session) == {"PEN-1": (50, 6), "BOOK-2": (3, 3)}

    twice = [ReleaseStock(order_id=o) for o in orders for _ in range(2)]
    await asyncio.gather(*(_handle(spec, sessions, release) for release in twice))
    async with sessions() as session:
        assert await stock_levels(session) == {"PEN-1": (50, 0), "BOOK-2": (3, 0)}
