"""The composition root of the inventory worker."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from importlib import import_module
from pathlib import Path

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from config.settings import Settings
from contracts.base import Cents, ShortText, Sku
from outbox.db import SessionFactory
from outbox.tables import utcnow
from workers.inventory.handlers import HANDLERS
from workers.inventory.service import SERVICE
from workers.inventory.tables import INVENTORY_TABLES, StockItem
from workers.runtime.service import ServiceSpec

__all__ = ["CatalogItem", "bootstrap", "load_catalog", "seed_stock"]


class CatalogItem(BaseModel):
    """One entry of the demo catalog (`config/catalog.json`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    name: ShortText
    unit_price_cents: Cents
    stock: int = Field(ge=0)


def load_catalog(path: Path) -> list[CatalogItem]:
    """The catalog at `path`, validated; a bad file names the entry at fault."""
    return TypeAdapter(list[CatalogItem]).validate_python(json.loads(path.read_text("utf-8")))


def seed_stock(catalog_path: Path) -> Callable[[SessionFactory], Awaitable[None]]:
    """A start-up step that adds catalog SKUs missing from the database, never resetting others."""

    async def seed(sessions: SessionFactory) -> None:
        now = utcnow()
        rows = [
            {**item.model_dump(exclude={"stock"}), "on_hand": item.stock, "updated_at": now}
            for item in load_catalog(catalog_path)
        ]
        if not rows:
            return
        async with sessions() as session:
            dialect = (await session.connection()).dialect.name
            # The dialect's own insert, imported only now: PostgreSQL's dialect modules would
            # cost a worker on SQLite about 2 MiB (docs/performance.md, "Worker memory").
            chosen = "postgresql" if dialect == "postgresql" else "sqlite"
            insert = import_module(f"sqlalchemy.dialects.{chosen}").insert
            # DO NOTHING on a known SKU: a restart keeps stock levels, and workers starting
            # together on one database cannot clash.
            statement = (
                insert(StockItem).values(rows).on_conflict_do_nothing(index_elements=["sku"])
            )
            await session.exec(statement)
            await session.commit()
        logger.info("stock present for the {} SKUs of {}", len(rows), catalog_path.name)

    return seed


def bootstrap(settings: Settings) -> ServiceSpec:
    """The inventory service: its queue, handlers, tables, and stock seeded from the catalog."""
    return ServiceSpec(
        name=SERVICE.name,
        subscription=SERVICE.subscription,
        handlers=HANDLERS,
        tables=INVENTORY_TABLES,
        on_start=seed_stock(settings.catalog_path),
    )
