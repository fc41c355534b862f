"""Fresh databases for a run: SQLite files in the run's directory, or PostgreSQL databases."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Literal

import asyncpg
from sqlalchemy.engine import make_url

from workers.ops.doctor import pg_test_dsn

Backend = Literal["sqlite", "sqlite-aiosqlite", "postgres"]
# The SQLAlchemy driver of each SQLite backend: `sqlite` is Warren's default, the inline one.
SQLITE_DRIVERS = {"sqlite": "inline", "sqlite-aiosqlite": "aiosqlite"}


async def _execute(dsn: str, statement: str) -> str | None:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        value = await connection.fetchval(statement)
        return None if value is None else str(value)
    finally:
        await connection.close()


class Databases:
    """Hands out one new database per name; `drop_all` removes every one of them."""

    def __init__(self, backend: Backend, root: Path, run_id: str) -> None:
        self.backend, self.root, self.run_id = backend, root, run_id
        self.server_dsn = pg_test_dsn() if backend == "postgres" else ""
        self._created: list[str] = []

    async def url(self, name: str) -> str:
        """A SQLAlchemy async URL of a brand-new, empty database called after `name`."""
        if self.backend in SQLITE_DRIVERS:
            self.root.mkdir(parents=True, exist_ok=True)
            return f"sqlite+{SQLITE_DRIVERS[self.backend]}:///{self.root / f'{name}.db'}"
        database = f"warren_bench_{self.run_id}_{name}"
        await _execute(self.server_dsn, f'CREATE DATABASE "{database}"')
        self._created.append(database)
        url = make_url(self.server_dsn).set(drivername="postgresql+asyncpg", database=database)
        return url.render_as_string(hide_password=False)

    async def server_version(self) -> str | None:
        """The PostgreSQL server version, when this run uses PostgreSQL."""
        if self.backend != "postgres":
            return None
        return await _execute(self.server_dsn, "SHOW server_version")

    def drop_all(self) -> list[str]:
        """Drop every database made for this run (call outside any event loop); what is left."""
        shutil.rmtree(self.root, ignore_errors=True)
        left = []
        for database in self._created:
            try:
                statement = f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'
                asyncio.run(_execute(self.server_dsn, statement))
            except Exception as exc:  # keep going: drop what can be dropped, report the rest
                left.append(f"{database} ({exc})")
        self._created.clear()
        return left
