"""SQLite on either driver: writers wait for the lock without ever blocking the event loop.

`sqlite+inline://` waits on an asyncio lock and retries "busy" with asynchronous pauses;
`sqlite+aiosqlite://` waits in SQLite's busy handler on aiosqlite's thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from outbox.db import create_engine

HOLD_S = 0.6


@pytest.fixture(params=["inline", "aiosqlite"])
def driver(request: pytest.FixtureRequest) -> str:
    """Each SQLite driver of `outbox.db.create_engine` in turn."""
    return str(request.param)


@pytest.fixture
async def engine(tmp_path: Path, driver: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+{driver}:///{tmp_path / 'locking.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT)"))
    yield engine
    await engine.dispose()


class Ticker:
    """Counts event-loop turns: a blocked loop shows as a gap between ticks."""

    def __init__(self) -> None:
        self.longest_gap = 0.0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.005)
            now = time.monotonic()
            self.longest_gap, last = max(self.longest_gap, now - last), now

    def stop(self) -> None:
        self._task.cancel()


def _write_lock_is_free(db_file: Path) -> bool:
    """Whether another connection could start writing right now (it does not wait)."""
    with closing(sqlite3.connect(db_file, timeout=0, isolation_level=None)) as other:
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        other.execute("ROLLBACK")
        return True


async def _rows(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [row[0] for row in await conn.execute(text("SELECT who FROM t ORDER BY id"))]


async def test_writers_in_one_process_queue_for_the_lock_and_the_loop_keeps_running(
    engine: AsyncEngine,
) -> None:
    ticker, holding = Ticker(), asyncio.Event()

    async def first() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (who) VALUES ('first')"))
            holding.set()
            await asyncio.sleep(HOLD_S)  # a transaction that awaits something else meanwhile

    async def second() -> None:
        await holding.wait()
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (who) VALUES ('second')"))

    started = time.monotonic()
    await asyncio.gather(first(), second())
    ticker.stop()
    assert time.monotonic() - started >= HOLD_S
    assert await _rows(engine) == ["first", "second"]
    assert ticker.longest_gap < 0.2, ticker.longest_gap


async def test_a_writer_waits_for_another_process_without_blocking_the_loop(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    holder = await asyncio.to_thread(
        subprocess.Popen,
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(tmp_path / 'locking.db')!r}, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE'); c.execute(\"INSERT INTO t (who) VALUES ('other')\")\n"
            f"print('holding', flush=True); time.sleep({HOLD_S}); c.execute('COMMIT')\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert await asyncio.to_thread(holder.stdout.readline) == "holding\n"
    ticker = Ticker()
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (who) VALUES ('mine')"))
    ticker.stop()
    assert await asyncio.to_thread(holder.wait) == 0
    assert await _rows(engine) == ["other", "mine"]
    assert ticker.longest_gap < 0.2, ticker.longest_gap


async def test_a_lock_held_past_the_busy_timeout_is_a_clear_error(
    tmp_path: Path, driver: str
) -> None:
    url = f"sqlite+{driver}:///{tmp_path / 'short.db'}"
    engine = create_engine(url, busy_timeout_s=0.2)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        async with engine.begin() as holder:
            await holder.execute(text("INSERT INTO t DEFAULT VALUES"))
            with pytest.raises(OperationalError, match="database is locked"):
                async with engine.begin() as conn:
                    await conn.execute(text("INSERT INTO t DEFAULT VALUES"))
    finally:
        await engine.dispose()


async def test_a_transaction_that_begins_with_a_read_holds_the_write_lock_in_wal_mode(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    # BEGIN IMMEDIATE: a read-then-write transaction is never refused its write halfway
    async with engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        await conn.execute(text("SELECT count(*) FROM t"))
        assert not _write_lock_is_free(tmp_path / "locking.db")
    assert _write_lock_is_free(tmp_path / "locking.db")


async def test_a_read_only_engine_takes_no_write_lock(
    engine: AsyncEngine, tmp_path: Path, driver: str
) -> None:
    reader = create_engine(f"sqlite+{driver}:///{tmp_path / 'locking.db'}", read_only=True)
    try:
        async with reader.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM t")) == 0
            assert _write_lock_is_free(tmp_path / "locking.db")
    finally:
        await reader.dispose()


@pytest.mark.parametrize("off_loop", [True, False])
async def test_a_commit_that_wrote_syncs_off_the_loop_only_when_asked(
    tmp_path: Path, off_loop: bool
) -> None:
    # given an inline engine whose connections report the thread each COMMIT runs on
    engine = create_engine(f"sqlite+inline:///{tmp_path / 'commit.db'}", commit_off_loop=off_loop)
    committed_on: list[int] = []

    def trace(statement: str) -> None:
        if statement == "COMMIT":
            committed_on.append(threading.get_ident())

    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        sqlite = (await conn.get_raw_connection()).driver_connection
        sqlite.set_trace_callback(trace)
    committed_on.clear()

    # when one transaction writes and another only reads
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (id) VALUES (1)"))
    wrote = committed_on.pop()
    async with engine.begin() as conn:
        await conn.execute(text("SELECT count(*) FROM t"))
    read = committed_on.pop()
    await engine.dispose()

    # then the write was committed (another connection sees it), off the loop's thread if asked,
    # and the read-only one committed on the loop's thread either way
    with closing(sqlite3.connect(tmp_path / "commit.db")) as other:
        assert other.execute("SELECT count(*) FROM t").fetchone() == (1,)
    loop_thread = threading.get_ident()
    assert (wrote != loop_thread) is off_loop
    assert read == loop_thread
