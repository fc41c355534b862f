"""The account desk: users and their API keys, as commands to the accounts service.

The gateway keeps a view of each user and the hashes of their keys, which is what it
authenticates with. A change is written to that view and to the outbox in one transaction, so a
new key is accepted at once and a revoked one refused at once, by every gateway instance on the
same database (within the authentication cache's second); the accounts service, which owns the
users, learns of it through the broker and answers with events the projection applies.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy import bindparam, insert, select, update

from config.settings import hash_api_key
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
from gateway.notifier import Notifier
from gateway.problems import ProblemError
from gateway.schemas import ApiKeyOut, CreateUserRequest, KeyRevokedOut, UserOut
from gateway.tables import API_KEYS, USERS
from outbox.db import SessionFactory, rows
from outbox.tables import utcnow
from outbox.unit_of_work import UnitOfWork
from workers.runtime.consumer import Handler

USER_CLIENT_PREFIX = "user:"
KEY_PREFIX = "wk_"
FINAL = frozenset({UserStatus.DEACTIVATED, UserStatus.REJECTED})
NOT_FOUND = ProblemError(404, "User not found", "No user with this id is visible to your API key.")
KEY_NOT_FOUND = ProblemError(404, "API key not found", "This user has no API key with this id.")
OPERATORS_ONLY = ProblemError(403, "Operators only", "Only an operator's API key creates users.")


def user_client(user_id: str) -> str:
    """The client name of a user's keys: what their orders and carts belong to."""
    return f"{USER_CLIENT_PREFIX}{user_id}"


def user_of(client: str) -> str | None:
    """The user id behind a client name; None for an operator (a key from the settings)."""
    return client.removeprefix(USER_CLIENT_PREFIX) if is_user(client) else None


def is_user(client: str) -> bool:
    return client.startswith(USER_CLIENT_PREFIX)


def _may_see(client: str, user_id: str) -> bool:
    return not is_user(client) or client == user_client(user_id)


class AccountDesk:
    """Creates, shows and deactivates users; issues and revokes their keys."""

    def __init__(
        self,
        sessions: SessionFactory,
        reads: SessionFactory,
        notifier: Notifier,
        on_commit: Callable[[], None],
    ) -> None:
        self._sessions, self._reads = sessions, reads
        self._notifier, self._on_commit = notifier, on_commit

    def _uow(self) -> UnitOfWork:
        return UnitOfWork(self._sessions, on_commit=self._on_commit)

    async def create(self, client: str, body: CreateUserRequest) -> UserOut:
        """A PENDING user; accounts makes it ACTIVE, or REJECTED if the email is taken."""
        if is_user(client):
            raise OPERATORS_ONLY
        user_id, now = str(uuid.uuid4()), utcnow()
        try:  # lower-cased, as accounts compares emails; a rare letter grows when lowered
            command = RegisterUser(
                user_id=uuid.UUID(user_id), email=body.email.lower(), name=body.name
            )
        except ValidationError as exc:
            raise ProblemError(
                422, "Invalid email", "The email is not valid once lower-cased."
            ) from exc
        view = {
            "user_id": user_id,
            "email": command.email,
            "name": body.name,
            "status": UserStatus.PENDING.value,
            "reason": None,
            "created_at": now,
            "updated_at": now,
        }
        async with self._uow() as uow:
            await uow.session.exec(insert(USERS), params=view)
            uow.publish(Envelope(command, correlation_id=user_id))
            await uow.commit()
        return _user_out(view)

    async def get(self, client: str, user_id: str) -> UserOut:
        async with self._reads() as session:
            return _user_out(await _visible(session, client, user_id))

    async def wait(self, client: str, user_id: str, seconds: float) -> UserOut:
        """The user once its status is settled (not PENDING), or as it is after `seconds`."""
        deadline = time.monotonic() + seconds
        user = await self.get(client, user_id)
        while user.status == UserStatus.PENDING and not self._notifier.closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            await self._notifier.wait(user_id, min(remaining, 1.0))
            user = await self.get(client, user_id)
        return user

    async def issue_key(self, client: str, user_id: str) -> ApiKeyOut:
        """A new key, shown once: only its hash is kept, here and in the accounts service."""
        api_key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id, digest = str(uuid.uuid4()), hash_api_key(api_key)
        async with self._uow() as uow:
            user = await _visible(uow.session, client, user_id)
            if user.status != UserStatus.ACTIVE:
                raise ProblemError(
                    409,
                    "User not active",
                    f"Keys are issued to ACTIVE users; this one is {user.status}.",
                )
            row = {"key_hash": digest, "key_id": key_id, "user_id": user_id, "revoked": False}
            await uow.session.exec(insert(API_KEYS), params=row | {"created_at": utcnow()})
            command = IssueApiKey(
                user_id=uuid.UUID(user_id), key_id=uuid.UUID(key_id), key_hash=digest
            )
            uow.publish(Envelope(command, correlation_id=user_id))
            await uow.commit()
        return ApiKeyOut(key_id=key_id, api_key=api_key)

    async def revoke_key(self, client: str, user_id: str, key_id: str) -> KeyRevokedOut:
        """Refused from now on; the accounts service is told."""
        async with self._uow() as uow:
            await _visible(uow.session, client, user_id)
            key = (
                await rows(uow.session, _KEY_OF_USER, {"key_id": key_id, "user_id": user_id})
            ).first()
            if key is None:
                raise KEY_NOT_FOUND
            if not key.revoked:
                await uow.session.exec(_REVOKE_KEY, params={"id": key_id})
                command = RevokeApiKey(user_id=uuid.UUID(user_id), key_id=uuid.UUID(key_id))
                uow.publish(Envelope(command, correlation_id=user_id))
            await uow.commit()
        return KeyRevokedOut(key_id=key_id, revoked=True)

    async def deactivate(self, client: str, user_id: str) -> UserOut:
        """DEACTIVATED at once here (every key refused); the accounts service revokes the keys."""
        async with self._uow() as uow:
            user = await _visible(uow.session, client, user_id)
            if user.status == UserStatus.REJECTED:
                raise ProblemError(
                    409, "User was rejected", "A rejected user cannot be deactivated."
                )
            if user.status != UserStatus.DEACTIVATED:
                changes = {
                    "id": user_id,
                    "new_status": UserStatus.DEACTIVATED.value,
                    "new_reason": None,
                }
                await uow.session.exec(_MOVE_USER, params=changes | {"now": utcnow()})
                uow.publish(
                    Envelope(DeactivateUser(user_id=uuid.UUID(user_id)), correlation_id=user_id)
                )
            await uow.commit()
            user = await _visible(uow.session, client, user_id)
        self._notifier.changed(user_id, UserStatus.DEACTIVATED)
        return _user_out(user)


_USER = select(USERS).where(USERS.c.user_id == bindparam("user_id"))
_KEY_OF_USER = select(API_KEYS.c.key_id, API_KEYS.c.revoked).where(
    API_KEYS.c.key_id == bindparam("key_id"), API_KEYS.c.user_id == bindparam("user_id")
)
_REVOKE_KEY = update(API_KEYS).where(API_KEYS.c.key_id == bindparam("id")).values(revoked=True)
_MOVE_USER = (
    update(USERS)
    .where(USERS.c.user_id == bindparam("id"))
    .values(
        status=bindparam("new_status"),
        reason=bindparam("new_reason"),
        updated_at=bindparam("now"),
    )
)


async def _visible(session: Any, client: str, user_id: str) -> Any:
    user = (
        (await rows(session, _USER, {"user_id": user_id})).first()
        if _may_see(client, user_id)
        else None
    )
    if user is None:
        raise NOT_FOUND
    return user


def _user_out(view: Any) -> UserOut:
    fields = view if isinstance(view, dict) else view._mapping
    return UserOut(
        user_id=fields["user_id"],
        email=fields["email"],
        name=fields["name"],
        status=UserStatus(fields["status"]),
        reason=fields["reason"],
    )


def user_status_handler(notifier: Notifier) -> Handler:
    """The projection of UserStatusChanged: PENDING moves on; DEACTIVATED and REJECTED are final."""

    async def user_status_changed(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        event: UserStatusChanged = envelope.message
        user_id = str(event.user_id)
        view = (await rows(uow.session, _USER, {"user_id": user_id})).first()
        if view is None or UserStatus(view.status) in FINAL or view.status == event.status:
            return
        changes = {"id": user_id, "new_status": event.status.value, "new_reason": event.reason}
        await uow.session.exec(_MOVE_USER, params=changes | {"now": utcnow()})
        if event.status is UserStatus.DEACTIVATED:  # deactivated elsewhere: every key goes
            await uow.session.exec(_REVOKE_KEYS_OF, params={"user": user_id})
        status = event.status
        uow.after_commit(lambda: notifier.changed(user_id, status))

    return user_status_changed


_REVOKE_KEYS_OF = (
    update(API_KEYS).where(API_KEYS.c.user_id == bindparam("user")).values(revoked=True)
)


async def api_key_revoked(envelope: Envelope[Any], uow: UnitOfWork) -> None:
    """The projection of ApiKeyRevoked: the key is refused from now on."""
    event: ApiKeyRevoked = envelope.message
    await uow.session.exec(_REVOKE_KEY, params={"id": str(event.key_id)})


ACCOUNT_HANDLERS = {ApiKeyRevoked.NAME: api_key_revoked}
