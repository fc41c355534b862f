"""`warren doctor`: do RabbitMQ, its management API and the test PostgreSQL server answer?

With `--fix` it also starts the local ones that are installed but stopped (`local_services`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Annotated
from urllib.parse import urlsplit

import aio_pika
import aiormq
import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.settings import BROKER_URL_SEPARATOR, Settings, get_settings
from workers.ops.local_services import (
    MANAGEMENT_HINT,
    POSTGRES_HINT,
    RABBITMQ_HINT,
    RABBITMQ_PLUGINS,
    Machine,
    Needs,
    propose,
    run_step,
)
from workers.ops.management import Management

__all__ = [
    "DEFAULT_TEST_PG_DSN",
    "MANAGEMENT_HINT",
    "POSTGRES_HINT",
    "RABBITMQ_HINT",
    "Check",
    "doctor",
    "pg_test_dsn",
    "redact",
]

CHECK_TIMEOUT_S = 5.0
# How long `--fix` waits at least for a service it has just started to answer.
FIX_WAIT_S = 60.0
POLL_S = 1.0
DEFAULT_TEST_PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


class _TestDatabaseServer(BaseSettings):
    """The PostgreSQL server the tests create their throw-away databases on."""

    model_config = SettingsConfigDict(env_prefix="WARREN_TEST_", env_file=".env", extra="ignore")

    pg_dsn: str = DEFAULT_TEST_PG_DSN


def pg_test_dsn() -> str:
    """`WARREN_TEST_PG_DSN` (environment or `.env`), or the local default server."""
    return _TestDatabaseServer().pg_dsn


def redact(url: str) -> str:
    """The URL (or comma-separated URLs) with each password masked, fit to print."""
    urls = BROKER_URL_SEPARATOR.split(url)
    if len(urls) > 1:
        return ",".join(redact(one) for one in urls)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{netloc}").geturl()


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check, with what to do next when it failed."""

    name: str
    target: str
    ok: bool
    detail: str
    hint: str | None = None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


async def _check_amqp(settings: Settings, url: str, limit_s: float) -> Check:
    name, target = "RabbitMQ (AMQP)", redact(url)
    try:
        # The outer bound is a guard: whatever the client library does, fail fast.
        async with asyncio.timeout(limit_s + 1):
            connection = await aio_pika.connect(url, timeout=limit_s)
    except aiormq.exceptions.ProbableAuthenticationError as exc:
        hint = "check the user and password in WARREN_BROKER_URL"
        return Check(name, target, False, _reason(exc), hint)
    except (OSError, TimeoutError, aiormq.exceptions.AMQPConnectionError) as exc:
        return Check(name, target, False, _reason(exc), RABBITMQ_HINT)
    except aiormq.exceptions.AMQPError as exc:
        hint = f"does the vhost {settings.vhost!r} exist, and may this user use it?"
        return Check(name, target, False, f"{type(exc).__name__}: {exc}", hint)
    await connection.close()
    return Check(name, target, True, f"connected to vhost {settings.vhost!r}")


async def _check_management(settings: Settings, limit_s: float) -> Check:
    import httpx  # here, not at the top: `warren worker` loads this module, never runs it

    name, target = "RabbitMQ management API", settings.management_url
    try:
        async with asyncio.timeout(limit_s + 1), Management(settings, timeout_s=limit_s) as api:
            overview = await api.overview()
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 401:
            hint = "check WARREN_MANAGEMENT_USER and WARREN_MANAGEMENT_PASSWORD"
            return Check(name, target, False, "401 Unauthorized", hint)
        detail = f"GET /api/overview answered {exc.response.status_code}"
        return Check(name, target, False, detail, MANAGEMENT_HINT)
    except (httpx.HTTPError, TimeoutError) as exc:
        return Check(name, target, False, _reason(exc), MANAGEMENT_HINT)
    version = overview.get("rabbitmq_version", "?")
    missing = await _missing_plugins(settings, limit_s)
    if missing:
        detail = f"RabbitMQ {version} without the plugins {', '.join(missing)}"
        return Check(name, target, False, detail, MANAGEMENT_HINT)
    return Check(name, target, True, f"RabbitMQ {version}")


async def _missing_plugins(settings: Settings, limit_s: float) -> list[str]:
    """The plugins Warren uses that some node of the cluster has not enabled."""
    import httpx

    try:
        async with Management(settings, timeout_s=limit_s) as api:
            nodes = await api.nodes()
    except (httpx.HTTPError, ValueError):
        return []  # a user without the monitoring tag may not list nodes: nothing to say
    enabled = [set(node.get("enabled_plugins") or ()) for node in nodes] or [set()]
    return [plugin for plugin in RABBITMQ_PLUGINS if not all(plugin in e for e in enabled)]


async def _check_postgres(dsn: str, limit_s: float) -> Check:
    import asyncpg

    name, target = "PostgreSQL (test database server)", redact(dsn)
    try:
        async with asyncio.timeout(limit_s + 1):
            connection = await asyncpg.connect(dsn, timeout=limit_s)
    except (OSError, TimeoutError) as exc:
        return Check(name, target, False, _reason(exc), POSTGRES_HINT)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        hint = "check the user, password and database in WARREN_TEST_PG_DSN"
        return Check(name, target, False, f"{type(exc).__name__}: {exc}", hint)
    try:
        version = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    return Check(name, target, True, f"PostgreSQL {version}")


async def run_checks(settings: Settings, pg_dsn: str, limit_s: float) -> list[Check]:
    """Run every check concurrently; a check never raises, it reports."""
    return list(
        await asyncio.gather(
            *(_check_amqp(settings, url, limit_s) for url in settings.amqp_urls()),
            _check_management(settings, limit_s),
            _check_postgres(pg_dsn, limit_s),
        )
    )


def check_and_fix(
    settings: Settings, pg_dsn: str, limit_s: float, wait_s: float, fix: bool
) -> tuple[list[Check], list[str]]:
    """Check until every service answers or the wait is over, fixing local ones when asked to."""
    deadline = time.monotonic() + wait_s
    tried: set[tuple[str, ...]] = set()
    problems: list[str] = []
    machine: Machine | None = None
    while True:
        checks = asyncio.run(run_checks(settings, pg_dsn, limit_s))
        if all(check.ok for check in checks):
            return checks, problems
        hints = {check.hint for check in checks if not check.ok}
        urls = (settings.amqp_urls()[0], settings.management_url, pg_dsn)
        if fix and machine is None:
            machine = Machine.discover()  # only once something fails: it runs pg_lsclusters
        steps = [] if machine is None else propose(Needs.of(hints, *urls), machine)
        steps = [step for step in steps if (step.why, *step.argv) not in tried]
        for step in steps:
            tried.add((step.why, *step.argv))
            typer.echo(f"fix: {step.why}: {' '.join(step.argv) or '(not possible)'}", err=True)
            if (problem := run_step(step)) is not None:
                problems.append(problem)
            else:
                deadline = max(deadline, time.monotonic() + FIX_WAIT_S)
        if not steps and time.monotonic() >= deadline:
            return checks, problems
        if not steps:
            time.sleep(POLL_S)  # polling a service that is starting: no event to wait on


def _print(checks: list[Check]) -> None:
    width = max(len(check.name) for check in checks)
    for check in checks:
        status = "ok" if check.ok else "FAILED"
        typer.echo(f"{status:<7} {check.name:<{width}}  {check.target}  {check.detail}")
        if check.hint:
            typer.echo(f"{'':<7} hint: {check.hint}")


def doctor(
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for each service.")
    ] = CHECK_TIMEOUT_S,
    fix: Annotated[
        bool, typer.Option("--fix", help="Start local services and enable plugins as needed.")
    ] = False,
    wait: Annotated[
        float, typer.Option("--wait", min=0, help="Seconds to keep trying until all answer.")
    ] = 0.0,
) -> None:
    """Check that RabbitMQ, its management API and the test PostgreSQL server answer."""
    # aiormq logs every refused connection; the report below already says it once.
    logging.getLogger("aiormq").addHandler(logging.NullHandler())
    try:
        settings = get_settings()
    except ValidationError as exc:
        checks = [Check("settings", "WARREN_* variables", False, str(exc), "see .env.example")]
        problems: list[str] = []
    else:
        checks, problems = check_and_fix(settings, pg_test_dsn(), timeout, wait, fix)
    if json_out:
        failed = any(not check.ok for check in checks)
        checks_out = [asdict(check) for check in checks]
        report = {"ok": not failed, "checks": checks_out, "problems": problems}
        typer.echo(json.dumps(report, indent=2))
    else:
        _print(checks)
        for problem in problems:
            typer.echo(f"{'':<7} {problem}")
    if any(not check.ok for check in checks):
        raise typer.Exit(1)
