"""Outages in memory: which failures pause the consumer, and how the pause probes and resumes."""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg.exceptions as pg
import pytest
from aiormq.exceptions import ChannelInvalidStateError, DeliveryError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from contracts.errors import MalformedMessage
from workers.runtime import metrics
from workers.runtime.errors import InfrastructureError, PermanentError, TransientError
from workers.runtime.outages import Pause, is_infrastructure


def wrapped(error: BaseException) -> Exception:
    """`error` as the handler's caller sees it: raised from inside another exception."""
    try:
        try:
            raise error
        except BaseException as inner:
            raise RuntimeError("handler failed") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    "error",
    [
        InfrastructureError("payments provider unreachable"),
        ConnectionRefusedError(111, "Connect call failed"),
        OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")),
        DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
        pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        pg.AdminShutdownError("terminating connection due to administrator command"),
        ChannelInvalidStateError("channel closed"),
        DeliveryError(None, None),  # a broker nack: it refused the publish
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_unreachable_or_locked_dependency_is_an_outage(error: Exception) -> None:
    assert is_infrastructure(error)
    assert is_infrastructure(wrapped(error)), "found however deep it was raised"


@pytest.mark.parametrize(
    "error",
    [
        TransientError("flaky"),
        PermanentError("bug"),
        MalformedMessage("not JSON"),
        IntegrityError("INSERT", {}, Exception("duplicate key")),
        DBAPIError("SELECT", {}, Exception("serialization failure")),
        OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: inbox")),
        ValueError("bad amount"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_message_failure_is_not_an_outage(error: Exception) -> None:
    assert not is_infrastructure(error)


async def test_a_pause_is_announced_once_probes_one_at_a_time_and_resumes() -> None:
    calls: list[str] = []
    pause = Pause("unit.outage", on_change=lambda paused: calls.append(("resume", "pause")[paused]))
    # given two deliveries that both meet the outage
    await pause.failed(InfrastructureError("down"))
    await pause.failed(InfrastructureError("down"))
    assert pause.paused and calls == ["pause"]
    assert metrics.PAUSED.labels("unit.outage")._value.get() == 1

    # when both try again, only one probes at a time
    inside: list[int] = []
    probing = asyncio.Event()

    async def attempt(name: int) -> None:
        async with pause.attempt():
            inside.append(name)
            probing.set()
            await asyncio.sleep(0.05)
            assert len(inside) == 1, "a second attempt ran during the probe"
            await pause.succeeded()
            inside.remove(name)

    await asyncio.gather(attempt(1), attempt(2))

    # then the first success resumes consuming, once
    assert not pause.paused and calls == ["pause", "resume"]
    assert metrics.PAUSED.labels("unit.outage")._value.get() == 0
