"""Async engines for SQLite and PostgreSQL, with SQLite made safe for concurrent writers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Executable, Result, Table, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from outbox import sqlite

SessionFactory = async_sessionmaker[AsyncSession]
# The PostgreSQL advisory lock under which the instances of a service create its tables in turn.
SCHEMA_LOCK = 0x5741_5252_454E  # "WARREN"
AIOSQLITE = "aiosqlite"  # `sqlite+aiosqlite://`: SQLAlchemy's own dialect, on aiosqlite's thread


async def rows(
    session: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> Result[*tuple[Any, ...]]:
    """The rows of a Core SELECT, in the session's transaction.

    sqlmodel's `exec` runs any statement, but is typed only for its own selects. Hot paths pass
    a statement built once, with `bindparam`s, and its `params`: building a statement and its
    cache key costs more than SQLite takes to run it.
    """
    return await session.exec(statement, params=params)  # type: ignore[call-overload]


def is_sqlite(engine: AsyncEngine) -> bool:
    """Whether the engine talks to SQLite (one writer per file, no SKIP LOCKED)."""
    return engine.dialect.name == "sqlite"


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    read_only: bool = False,
    busy_timeout_s: float = 30.0,
    idle_in_transaction_s: float | None = None,
    commit_off_loop: bool = False,
) -> AsyncEngine:
    """An engine for `url`; SQLite, on either driver, gets WAL and BEGIN IMMEDIATE.

    `read_only` engines on SQLite skip BEGIN IMMEDIATE: their snapshot reads take no write lock.
    `busy_timeout_s` is how long a SQLite writer waits for the write lock before it gives up.
    `idle_in_transaction_s` (PostgreSQL): the server ends a session whose transaction sits idle
    that long, so a frozen process (SIGSTOP, a stalled VM) cannot hold row locks, such as the
    outbox rows a relay claimed with SKIP LOCKED, beyond it.
    `commit_off_loop` (SQLite, inline driver): a transaction that wrote commits on a worker
    thread, so the loop goes on while the disk syncs (see `outbox/sqlite.py`).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect_args: dict[str, Any] = {}
        if idle_in_transaction_s is not None and parsed.get_driver_name() == "asyncpg":
            timeout_ms = str(max(1, int(idle_in_transaction_s * 1000)))
            connect_args["server_settings"] = {"idle_in_transaction_session_timeout": timeout_ms}
        return create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            connect_args=connect_args,
        )
    # pysqlite on Python 3.11 begins lazily and never for SELECT; writers take the write lock up
    # front (BEGIN IMMEDIATE) so that a read-then-write transaction cannot fail with SQLITE_BUSY.
    begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"
    engine = _sqlite_engine(parsed, begin, busy_timeout_s, commit_off_loop)
    _use_wal(engine)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return engine


def _sqlite_engine(
    url: URL, begin: str, busy_timeout_s: float, commit_off_loop: bool
) -> AsyncEngine:
    driver = url.get_driver_name()
    if driver == sqlite.DRIVER:
        connect_args = {
            "busy_timeout_s": busy_timeout_s,
            "begin": begin,
            "commit_off_loop": commit_off_loop,
        }
        return create_async_engine(url, connect_args=connect_args)
    if driver == AIOSQLITE:
        # sqlite3 must not begin on its own: the "begin" event below does (SQLAlchemy's recipe
        # for Python < 3.12); waits for the lock happen on aiosqlite's thread, not the loop.
        connect_args = {"timeout": busy_timeout_s, "isolation_level": None}
        engine = create_async_engine(url, connect_args=connect_args)
        _begin_with(engine, begin)
        return engine
    raise ValueError(
        f"{url.drivername}:// names a SQLite driver Warren's async engines cannot run; use "
        f"sqlite+{sqlite.DRIVER}:///PATH (the default) or sqlite+{AIOSQLITE}:///PATH"
    )


def _begin_with(engine: AsyncEngine, begin: str) -> None:
    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)


def _use_wal(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        # FULL: a commit is on disk before the 202 or the ack that follows it (power loss too)
        for pragma in ("journal_mode=WAL", "synchronous=FULL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()


def session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded values after commit (no lazy IO in async code)."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def create_tables(engine: AsyncEngine, tables: Iterable[Any]) -> None:
    """Create the given SQLModel tables if they do not exist.

    On PostgreSQL, instances of one service starting together take turns (a transaction-scoped
    advisory lock): two concurrent CREATE TABLEs of one name fail on the catalog's unique index.
    """
    wanted: list[Table] = [t.__table__ if hasattr(t, "__table__") else t for t in tables]
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        await conn.run_sync(SQLModel.metadata.create_all, tables=wanted)


class HeldConnection:
    """One connection kept checked out between the transactions of one user, taken in turn.

    A transaction on a session of its own checks a connection out of the pool and back in (the
    pool's bookkeeping, its reset, and on PostgreSQL the pre-ping's round trip): a consumer
    under load spares that by running its transactions on this one. It holds no transaction
    between uses: each ends with its commit or rollback, which also lets go of a SQLite
    writer's lock. A connection whose use raised goes back to the pool (which discards it if
    it was lost), and so does one idle longer than `idle_s`: after a quiet spell the next use
    takes a fresh checkout, pinged by the pool as before.
    """

    def __init__(self, engine: AsyncEngine, idle_s: float = 1.0) -> None:
        self._engine, self._idle_s = engine, idle_s
        self._connection: AsyncConnection | None = None
        self._used_at = 0.0
        self._busy = False

    @asynccontextmanager
    async def use(self) -> AsyncIterator[AsyncConnection | None]:
        """The held connection; None while another transaction has it (use the pool then)."""
        if self._busy:
            yield None
            return
        self._busy = True
        try:
            connection = self._connection
            if connection is not None and (
                connection.invalidated or time.monotonic() - self._used_at > self._idle_s
            ):
                await self.close()
                connection = None
            if connection is None:
                connection = self._connection = await self._engine.connect()
            try:
                yield connection
            except BaseException:
                await self.close()
                raise
            if connection.in_transaction():  # a user that left its transaction open
                await self.close()
            self._used_at = time.monotonic()
        finally:
            self._busy = False

    async def close(self) -> None:
        """Give the connection back to the pool (it rolls back whatever is left open)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with suppress(Exception):  # a lost connection: the pool discards it
                await connection.close()
