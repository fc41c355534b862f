"""SQLite for the async engines without a thread hop per statement.

aiosqlite runs every statement on a thread of its own and hands the result back to the event loop:
a few tens of microseconds of queues, futures and wake-ups around statements that take a few
microseconds themselves (a local file in WAL mode). This driver runs each statement inline, on the
event loop's thread. Only waiting must not block the loop, and SQLite waits in three places:

- for the write lock: transactions that write start with `BEGIN IMMEDIATE`; in this process they
  queue on an asyncio lock per database file, and the loop keeps running while they wait;
- for another process that holds the write lock: statements answered "busy" are tried again after
  an asynchronous pause, up to `busy_timeout_s`, instead of sleeping in SQLite's busy handler;
- for the disk, when a commit is made durable: with `commit_off_loop` (the workers' engines),
  a commit that wrote runs on a thread of the default executor while the loop goes on.

It is the dialect of `sqlite+inline:///PATH` URLs, Warren's default; `sqlite+aiosqlite:///PATH`
runs aiosqlite itself, through SQLAlchemy's own dialect (`outbox.db.create_engine` sets up both).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.util.concurrency import await_

T = TypeVar("T")

DRIVER = "inline"  # the URL's driver name: `sqlite+inline://`
_BUSY = 5  # SQLITE_BUSY; extended codes keep it in their low byte
_BUSY_SNAPSHOT = 517  # a stale read snapshot: trying the statement again cannot help
_WRITE_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _write_lock(database: str) -> asyncio.Lock:
    """The in-process queue of writers to one database file, on the running loop."""
    locks = _WRITE_LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(database, asyncio.Lock())


async def _checkpoint() -> None:
    """Nothing: awaiting it tells SQLAlchemy's async engine that the statement ran "async"."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # older sqlite3 modules: fall back on the message
        return "locked" in str(exc) or "busy" in str(exc)
    return code & 0xFF == _BUSY and code != _BUSY_SNAPSHOT


class InlineConnection(AdaptedConnection):
    """A sqlite3 connection with the DBAPI surface SQLAlchemy's async engine expects."""

    __slots__ = (
        "_begin",
        "_busy_timeout_s",
        "_changes",
        "_commit_off_loop",
        "_database",
        "_lock",
        "_sqlite",
        "dbapi",
    )

    def __init__(
        self,
        dbapi: Any,
        connection: sqlite3.Connection,
        database: str,
        busy_timeout_s: float,
        begin: str,
        commit_off_loop: bool = False,
    ) -> None:
        self.dbapi = dbapi
        self._commit_off_loop = commit_off_loop
        self._begin = begin
        self._sqlite = connection
        self._connection = connection  # type: ignore[assignment]  # what driver_connection gives
        self._database = database
        self._busy_timeout_s = busy_timeout_s
        self._lock: asyncio.Lock | None = None
        self._changes = 0  # rows changed on this connection before its transaction began

    # -- the write lock --------------------------------------------------------------------
    def acquire_write_lock(self) -> None:
        if self._lock is not None:
            return
        lock = _write_lock(self._database)
        try:
            await_(asyncio.wait_for(lock.acquire(), self._busy_timeout_s))
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked (by this process)") from None
        self._lock = lock

    def release_write_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None and lock.locked():
            lock.release()

    def retry_busy(self, operation: Callable[..., T], *args: Any) -> T:
        """Run `operation`; while another process holds the lock, pause (not block) and retry."""
        deadline, pause = 0.0, 0.001
        while True:
            try:
                return operation(*args)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                now = time.monotonic()
                deadline = deadline or now + self._busy_timeout_s
                if now >= deadline:
                    raise
                await_(asyncio.sleep(pause))
                pause = min(pause * 2, 0.05)

    @property
    def in_transaction(self) -> bool:
        return self._sqlite.in_transaction

    def begin(self) -> None:
        """Open a transaction the way this engine wants (`BEGIN IMMEDIATE` for writers)."""
        if self._begin != "BEGIN":  # IMMEDIATE or EXCLUSIVE: a writer
            self.acquire_write_lock()
        self._changes = self._sqlite.total_changes
        try:
            self.retry_busy(self._sqlite.execute, self._begin)
        except BaseException:
            self.release_write_lock()
            raise

    # -- DBAPI -------------------------------------------------------------------------------
    def cursor(self, server_side: bool = False) -> InlineCursor:
        return InlineCursor(self, self._sqlite.cursor())

    def execute(self, operation: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        cursor = self.cursor()
        cursor.execute(operation, parameters)
        return cursor

    @property
    def isolation_level(self) -> str | None:
        return self._sqlite.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._sqlite.isolation_level = value  # type: ignore[assignment]

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._sqlite.create_function(*args, **kwargs)

    def commit(self) -> None:
        try:
            self.retry_busy(self._commit)
        finally:
            if self._sqlite.in_transaction is False:
                self.release_write_lock()

    def _commit(self) -> None:
        """With `commit_off_loop`, a transaction that wrote commits on a worker thread: a durable
        commit waits for the disk (`synchronous=FULL`), and the loop serves everything else
        meanwhile. Nothing else uses this connection until the commit returns; sqlite3 lets go
        of the GIL while it waits. One that only read has nothing to wait for: it commits here.

        It is the workers' choice, not the gateway's: measured, it lowers a worker's CPU per
        message (its loop consumes and publishes meanwhile, and batches grow), but it cut the
        lone gateway's throughput by a third: its writers (placements, the relay's marks) take
        turns on one write lock, and each turn grew by the thread's wake-up."""
        if not self._commit_off_loop or self._sqlite.total_changes == self._changes:
            self._sqlite.commit()
        else:
            await_(asyncio.to_thread(self._sqlite.commit))

    def rollback(self) -> None:
        try:
            self._sqlite.rollback()
        finally:
            self.release_write_lock()

    def close(self) -> None:
        try:
            self._sqlite.close()
        finally:
            self.release_write_lock()

    def terminate(self) -> None:
        self.close()


class InlineCursor:
    """A sqlite3 cursor whose statements retry when another process keeps the file busy.

    Like SQLAlchemy's own async adapters, it reads a statement's rows at once and finalizes the
    statement, so no read stays open on the file while the caller consumes them.
    """

    __slots__ = ("_connection", "_cursor", "_description", "_rows")

    def __init__(self, connection: InlineConnection, cursor: sqlite3.Cursor) -> None:
        self._connection, self._cursor = connection, cursor
        self._rows: deque[Any] = deque()
        self._description: Any = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    def execute(self, operation: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        self._connection.retry_busy(self._run, operation, parameters)
        await_(_checkpoint())  # a few microseconds; AsyncConnection.execute insists on one
        return self

    def _run(self, operation: str, parameters: Sequence[Any]) -> None:
        cursor = self._cursor.execute(operation, parameters)
        self._description = cursor.description
        self._rows = deque(cursor.fetchall()) if cursor.description else deque()

    def executemany(self, operation: str, parameters: Sequence[Any]) -> InlineCursor:
        self._connection.retry_busy(self._cursor.executemany, operation, parameters)
        self._description, self._rows = None, deque()
        await_(_checkpoint())
        return self

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    def fetchall(self) -> list[Any]:
        rows, self._rows = list(self._rows), deque()
        return rows

    def close(self) -> None:
        self._rows.clear()
        self._cursor.close()

    async def _async_soft_close(self) -> None:
        """SQLAlchemy's async results call this; the rows are already read and kept."""
        self._cursor.close()

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()


class _InlineDBAPI:
    """sqlite3, whose `connect` answers an `InlineConnection`."""

    paramstyle = "qmark"

    def __init__(self) -> None:
        for name in (
            "DatabaseError",
            "Error",
            "IntegrityError",
            "InterfaceError",
            "InternalError",
            "NotSupportedError",
            "OperationalError",
            "ProgrammingError",
            "Warning",
            "DataError",
            "sqlite_version",
            "sqlite_version_info",
            "version",
            "version_info",
            "PARSE_COLNAMES",
            "PARSE_DECLTYPES",
            "Binary",
        ):
            if hasattr(sqlite3, name):
                setattr(self, name, getattr(sqlite3, name))
        self.sqlite = sqlite3

    def connect(
        self,
        database: str,
        *,
        busy_timeout_s: float = 30.0,
        begin: str = "BEGIN IMMEDIATE",
        commit_off_loop: bool = False,
        **kwargs: Any,
    ) -> InlineConnection:
        kwargs.update(timeout=0, check_same_thread=False)  # waits are ours, on the loop
        connection = sqlite3.connect(database, **kwargs)
        connection.isolation_level = None  # transactions begin when SQLAlchemy says, as `begin`
        return InlineConnection(self, connection, database, busy_timeout_s, begin, commit_off_loop)


class SQLiteDialect_inline(SQLiteDialect_pysqlite):
    """pysqlite's SQL dialect, served inline on the event loop (see the module docstring)."""

    driver = DRIVER
    is_async = True
    supports_statement_cache = True
    has_terminate = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return _InlineDBAPI()

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool

    def get_driver_connection(self, connection: Any) -> Any:
        return connection._connection

    def do_terminate(self, dbapi_connection: Any) -> None:
        dbapi_connection.terminate()

    def do_begin(self, dbapi_connection: Any) -> None:
        dbapi_connection.begin()  # straight to sqlite3: no statement through the engine


registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteDialect_inline")
