"""A database URL means what it says: the driver it names is the driver that runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite

from outbox.db import create_engine
from outbox.sqlite import SQLiteDialect_inline


@pytest.mark.parametrize(
    ("driver", "dialect", "connection"),
    [
        ("inline", SQLiteDialect_inline, sqlite3.Connection),
        ("aiosqlite", SQLiteDialect_aiosqlite, aiosqlite.Connection),
    ],
)
async def test_each_sqlite_url_runs_the_driver_it_names(
    tmp_path: Path, driver: str, dialect: type, connection: type
) -> None:
    engine = create_engine(f"sqlite+{driver}:///{tmp_path / 'named.db'}")
    try:
        assert type(engine.dialect) is dialect
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert isinstance(raw.driver_connection, connection)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("driver", ["sqlite", "sqlite+pysqlite"])
def test_a_sqlite_driver_the_async_engines_cannot_run_is_refused_naming_the_two_that_can(
    tmp_path: Path, driver: str
) -> None:
    with pytest.raises(ValueError, match=r"sqlite\+inline:///PATH .* sqlite\+aiosqlite:///PATH"):
        create_engine(f"{driver}:///{tmp_path / 'refused' / 'x.db'}")
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize("driver", ["inline", "aiosqlite"])
async def test_sqlite_commits_are_durable_before_they_return(tmp_path: Path, driver: str) -> None:
    # synchronous=FULL in WAL mode: each commit is fsynced, so a power loss keeps it
    engine = create_engine(f"sqlite+{driver}:///{tmp_path / 'durable.db'}")
    async with engine.connect() as connection:
        level = (await connection.exec_driver_sql("PRAGMA synchronous")).scalar()
    await engine.dispose()
    assert level == 2  # 0 OFF, 1 NORMAL, 2 FULL
