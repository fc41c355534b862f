"""Shared fixtures: a fresh RabbitMQ vhost per test module and throw-away databases.

A missing service fails the run with what to do next; it is never skipped
(docs/architecture.md, "Tests").
RabbitMQ fixtures are async and live on the session event loop (see pyproject.toml).
PostgreSQL administration (create/drop database) is sync so that `make_database_url` can be
called from sync and async tests alike; each call runs on a private loop in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

import aio_pika
import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from config.settings import Environment, Settings
from outbox.db import create_engine, create_tables
from outbox.tables import MESSAGING_TABLES
from workers.ops.doctor import MANAGEMENT_HINT, POSTGRES_HINT, RABBITMQ_HINT, pg_test_dsn, redact
from workers.ops.management import Management

Backend = Literal["sqlite-inline", "sqlite-aiosqlite", "postgres"]
BACKENDS: tuple[Backend, ...] = ("sqlite-inline", "sqlite-aiosqlite", "postgres")
SQLITE_BACKENDS: tuple[Backend, ...] = ("sqlite-inline", "sqlite-aiosqlite")
# The default SQLite driver and PostgreSQL: for slow tests whose outcome the broker decides.
DEFAULT_BACKENDS: tuple[Backend, ...] = ("sqlite-inline", "postgres")
MakeDatabaseUrl = Callable[[Backend], str]
T = TypeVar("T")


def _unavailable(service: str, target: str, exc: BaseException, hint: str) -> BaseException:
    """The test failure (never a skip) for a service that does not answer; raise it `from None`."""
    reason = str(exc) or type(exc).__name__
    message = (
        f"{service} at {target} is not available: {reason}\n"
        f"hint: {hint}\n`make services` checks every service the tests need."
    )
    return pytest.fail.Exception(message, pytrace=False)


# RabbitMQ ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """The settings of this machine (environment and `.env`), in the test environment."""
    return Settings(env=Environment.TEST)


@pytest.fixture(scope="session")
async def management(base_settings: Settings) -> AsyncIterator[Management]:
    """The management API client, authenticated as the management user."""
    url = base_settings.management_url
    async with Management(base_settings) as client:
        try:
            await client.overview()
        except httpx.HTTPStatusError as exc:
            hint = "check WARREN_MANAGEMENT_USER and WARREN_MANAGEMENT_PASSWORD"
            raise _unavailable("the RabbitMQ management API", url, exc, hint) from None
        except httpx.HTTPError as exc:
            raise _unavailable("the RabbitMQ management API", url, exc, MANAGEMENT_HINT) from None
        yield client


def _vhost_name(module_name: str) -> str:
    short = module_name.rpartition(".")[2].removeprefix("test_").replace("_", "-")[:40]
    return f"warren-test-{short}-{secrets.token_hex(3)}"


@contextlib.asynccontextmanager
async def fresh_vhost(
    management: Management, base_settings: Settings, label: str
) -> AsyncIterator[str]:
    """Create a virtual host for `label`, grant our users everything on it, delete it after."""
    name = _vhost_name(label)
    broker_user = unquote(urlsplit(base_settings.amqp_url()).username or "guest")
    try:
        users = {base_settings.management_user, broker_user}
        await management.create_vhost(name, f"Warren tests: {label}", users)
        yield name
    finally:
        await management.delete_vhost(name)


@pytest.fixture(scope="module")
async def rabbit_vhost(
    request: pytest.FixtureRequest, management: Management, base_settings: Settings
) -> AsyncIterator[str]:
    """A fresh virtual host for one test module, deleted with everything in it afterwards."""
    async with fresh_vhost(management, base_settings, request.module.__name__) as name:
        yield name


@pytest.fixture(scope="module")
async def amqp_url(base_settings: Settings, rabbit_vhost: str) -> str:
    """The broker URL pointed at this module's vhost; the broker is known to accept it."""
    url = base_settings.amqp_url(rabbit_vhost)
    try:
        connection = await aio_pika.connect(url, timeout=5)
    except Exception as exc:
        raise _unavailable("RabbitMQ (AMQP)", redact(url), exc, RABBITMQ_HINT) from None
    await connection.close()
    return url


@pytest.fixture(scope="module")
def test_settings(amqp_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for code under test: this module's vhost and its own `var` directory."""
    return Settings(
        env=Environment.TEST,
        broker_url=SecretStr(amqp_url),
        var_dir=tmp_path_factory.mktemp("var"),
    )


# PostgreSQL and SQLite --------------------------------------------------------------------


def _in_own_loop(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """Run `fn(*args)` on a private event loop, even from inside a running test's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(fn(*args))).result()


async def _execute(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _sqlalchemy_url(server_dsn: str, database: str) -> str:
    url = make_url(server_dsn).set(drivername="postgresql+asyncpg", database=database)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server_dsn() -> str:
    """The PostgreSQL server tests create databases on (`WARREN_TEST_PG_DSN`), known to answer."""
    dsn = pg_test_dsn()
    try:
        _in_own_loop(_execute, dsn, "SELECT 1")
    except Exception as exc:
        raise _unavailable(
            "PostgreSQL (the test database server)", redact(dsn), exc, POSTGRES_HINT
        ) from None
    return dsn


@pytest.fixture(scope="session")
def _pg_databases(pg_server_dsn: str) -> Iterator[Callable[[], str]]:
    """Create brand-new databases on demand; drop them all when the session ends."""
    created: list[str] = []

    def create() -> str:
        name = f"warren_test_{secrets.token_hex(4)}"
        _in_own_loop(_execute, pg_server_dsn, f'CREATE DATABASE "{name}"')
        created.append(name)
        return _sqlalchemy_url(pg_server_dsn, name)

    yield create
    for name in created:
        _in_own_loop(_execute, pg_server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database(_pg_databases: Callable[[], str]) -> str:
    """A SQLAlchemy URL of one fresh PostgreSQL database shared by the whole session."""
    return _pg_databases()


@pytest.fixture
def make_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> MakeDatabaseUrl:
    """A factory of clean databases: a new SQLite file (either driver) or PostgreSQL database."""

    def make(backend: Backend) -> str:
        if backend in SQLITE_BACKENDS:
            driver = backend.removeprefix("sqlite-")
            return f"sqlite+{driver}:///{tmp_path / f'{secrets.token_hex(4)}.db'}"
        if backend == "postgres":
            # Looked up lazily so that SQLite-only tests do not need PostgreSQL.
            create: Callable[[], str] = request.getfixturevalue("_pg_databases")
            return create()
        raise ValueError(f"unknown database backend {backend!r}; use one of {BACKENDS}")

    return make


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each database backend in turn: SQLite on both drivers, then PostgreSQL."""
    chosen: Backend = request.param
    return chosen


@pytest.fixture
def database_url(make_database_url: MakeDatabaseUrl, backend: Backend) -> str:
    """A clean database of the current `backend`, as a SQLAlchemy async URL."""
    return make_database_url(backend)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh `database_url` with the outbox, inbox and lease tables."""
    engine = create_engine(database_url)
    await create_tables(engine, MESSAGING_TABLES)
    yield engine
    await engine.dispose()
