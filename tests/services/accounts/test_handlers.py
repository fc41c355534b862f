"""Users and keys through the real bootstrap, on a SQLite file, with a recording outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlmodel import select

from config.settings import Environment, Settings, hash_api_key
from contracts.accounts import (
    ApiKeyRevoked,
    DeactivateUser,
    IssueApiKey,
    RegisterUser,
    RevokeApiKey,
    UserStatus,
    UserStatusChanged,
)
from contracts.envelope import Envelope
from outbox.db import SessionFactory, create_engine, create_tables, session_factory
from tests.support.fakes import RecordingUnitOfWork
from workers.accounts.bootstrap import bootstrap
from workers.accounts.checks import check, collect
from workers.accounts.tables import Account, AccountKey
from workers.runtime.service import ServiceSpec

Worker = tuple[ServiceSpec, SessionFactory]


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[Worker]:
    spec = bootstrap(Settings(_env_file=None, env=Environment.TEST))
    engine = create_engine(f"sqlite+inline:///{tmp_path / 'accounts.db'}")
    await create_tables(engine, spec.tables)
    yield spec, session_factory(engine)
    await engine.dispose()


async def deliver(worker: Worker, command: Any) -> list[Any]:
    """Handle `command` in a fresh envelope, as the runtime would; what it published."""
    spec, sessions = worker
    async with RecordingUnitOfWork(sessions) as uow:
        await spec.handlers[command.NAME](Envelope(command), uow)
        await uow.commit()
    return [e.message for e in uow.published]


async def keys(worker: Worker) -> dict[str, str]:
    async with worker[1]() as session:
        return {str(k.key_id): k.status for k in (await session.exec(select(AccountKey))).all()}


def register(email: str = "ada@example.com") -> RegisterUser:
    return RegisterUser(user_id=uuid4(), email=email, name="Ada")


def issue(user: RegisterUser) -> IssueApiKey:
    return IssueApiKey(user_id=user.user_id, key_id=uuid4(), key_hash=hash_api_key("wk_x"))


async def test_a_user_is_active_once_even_when_registered_twice(worker: Worker) -> None:
    command = register()

    first, second = await deliver(worker, command), await deliver(worker, command)

    assert first == [UserStatusChanged(user_id=command.user_id, status=UserStatus.ACTIVE)]
    assert second == []


async def test_an_email_already_registered_in_any_case_rejects_the_second_user(
    worker: Worker,
) -> None:
    await deliver(worker, register("ada@example.com"))
    second = register("ADA@Example.com")

    published = await deliver(worker, second)

    assert published == [
        UserStatusChanged(
            user_id=second.user_id, status=UserStatus.REJECTED, reason="email already registered"
        )
    ]


async def test_deactivating_a_user_revokes_every_key_and_refuses_later_ones(
    worker: Worker,
) -> None:
    user = register()
    await deliver(worker, user)
    first, second = issue(user), issue(user)
    await deliver(worker, first)
    await deliver(worker, second)

    published = await deliver(worker, DeactivateUser(user_id=user.user_id))
    late = issue(user)
    refused = await deliver(worker, late)

    revoked = {e.key_id for e in published if isinstance(e, ApiKeyRevoked)}
    assert revoked == {first.key_id, second.key_id}
    assert published[-1] == UserStatusChanged(user_id=user.user_id, status=UserStatus.DEACTIVATED)
    assert [type(e) for e in refused] == [ApiKeyRevoked]
    assert set((await keys(worker)).values()) == {"REVOKED"}


async def test_a_revocation_that_overtakes_its_key_keeps_the_key_revoked(worker: Worker) -> None:
    user = register()
    await deliver(worker, user)
    key = issue(user)

    await deliver(worker, RevokeApiKey(user_id=user.user_id, key_id=key.key_id))
    late = await deliver(worker, key)

    assert late == []
    assert await keys(worker) == {str(key.key_id): "REVOKED"}


async def test_a_deactivation_that_overtakes_the_registration_wins(worker: Worker) -> None:
    user = register()

    await deliver(worker, DeactivateUser(user_id=user.user_id))
    late = await deliver(worker, user)

    assert late == []
    async with worker[1]() as session:
        row = await session.get(Account, user.user_id)
    assert row is not None and row.status == UserStatus.DEACTIVATED


async def test_verify_finds_an_accepted_key_of_a_deactivated_user(worker: Worker) -> None:
    user = register()
    await deliver(worker, user)
    key = issue(user)
    await deliver(worker, key)
    await deliver(worker, DeactivateUser(user_id=user.user_id))
    async with worker[1]() as session:
        facts = await collect(session)

    clean = check(facts | {"api_keys_accepted": {}}, Settings(_env_file=None), None)
    stale = {"api_keys_accepted": {str(key.key_id): str(user.user_id)}}
    found = check(facts | stale, Settings(_env_file=None), None)

    assert clean == []
    assert [f.problem for f in found] == [
        f"accepted, but user {user.user_id} is deactivated",
        "accepted, but it was revoked",
    ]
