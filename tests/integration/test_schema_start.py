"""Instances of one service starting together on one new PostgreSQL database all start."""

from __future__ import annotations

import asyncio

from outbox.db import create_engine, create_tables
from outbox.tables import MESSAGING_TABLES


async def test_six_instances_creating_their_tables_at_once_on_a_new_database_all_succeed(
    make_database_url,
) -> None:
    url = make_database_url("postgres")
    engines = [create_engine(url) for _ in range(6)]
    try:
        await asyncio.gather(*(create_tables(engine, MESSAGING_TABLES) for engine in engines))
    finally:
        await asyncio.gather(*(engine.dispose() for engine in engines))
