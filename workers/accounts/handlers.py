"""Users and keys, each change once: rows keyed by the user and key ids are the idempotency guard.

Commands of one user may arrive out of order (two instances, a crash): a deactivation or a
revocation that overtakes what it undoes leaves a tombstone that the late command finds.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from loguru import logger
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select

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
from outbox.tables import utcnow
from outbox.unit_of_work import UnitOfWork
from workers.accounts.tables import Account, AccountKey, EmailClaim
from workers.runtime.consumer import Handler
from workers.runtime.errors import TransientError

ACTIVE, REVOKED = "ACTIVE", "REVOKED"
DUPLICATE_EMAIL = "email already registered"


async def _insert(uow: UnitOfWork, row: SQLModel, what: str) -> None:
    uow.session.add(row)
    try:
        await uow.session.flush()
    except IntegrityError as exc:  # a concurrent delivery committed first: the retry finds it
        raise TransientError(f"{what} written concurrently") from exc


async def register_user(envelope: Envelope[RegisterUser], uow: UnitOfWork) -> None:
    """ACTIVE with a fresh email, REJECTED with one already claimed; a repeat changes nothing."""
    command = envelope.message
    if await uow.session.get(Account, command.user_id) is not None:
        return  # registered already, or deactivated before this arrived
    email = command.email.lower()
    claim = await uow.session.get(EmailClaim, email)
    status, reason = UserStatus.ACTIVE, None
    if claim is None:
        await _insert(uow, EmailClaim(email=email, user_id=command.user_id), "an email claim")
    elif claim.user_id != command.user_id:
        status, reason = UserStatus.REJECTED, DUPLICATE_EMAIL
    account = Account(
        user_id=command.user_id,
        email=email,
        name=command.name,
        status=status,
        reason=reason,
        updated_at=utcnow(),
    )
    await _insert(uow, account, f"user {command.user_id}")
    logger.info("user {} {}", command.user_id, status.value.lower())
    uow.publish(
        envelope.caused(UserStatusChanged(user_id=command.user_id, status=status, reason=reason))
    )


def _revoked(envelope: Envelope[Any], key: AccountKey, reason: str) -> Envelope[Any]:
    return envelope.caused(ApiKeyRevoked(user_id=key.user_id, key_id=key.key_id, reason=reason))


async def issue_api_key(envelope: Envelope[IssueApiKey], uow: UnitOfWork) -> None:
    """Keep the key's hash; a key for a user who is not active is revoked at once."""
    command = envelope.message
    if await uow.session.get(AccountKey, command.key_id) is not None:
        return  # issued already, or revoked before this arrived
    user = await uow.session.get(Account, command.user_id)
    active = user is not None and user.status == UserStatus.ACTIVE
    key = AccountKey(
        key_id=command.key_id,
        user_id=command.user_id,
        key_hash=command.key_hash,
        status=ACTIVE if active else REVOKED,
        updated_at=utcnow(),
    )
    await _insert(uow, key, f"key {command.key_id}")
    if not active:
        uow.publish(_revoked(envelope, key, "its user is not active"))


async def revoke_api_key(envelope: Envelope[RevokeApiKey], uow: UnitOfWork) -> None:
    """Revoke the key; one not issued yet is kept revoked, so that its issue finds it so."""
    command = envelope.message
    key = await uow.session.get(AccountKey, command.key_id)
    if key is None:
        key = AccountKey(
            key_id=command.key_id, user_id=command.user_id, status=REVOKED, updated_at=utcnow()
        )
        await _insert(uow, key, f"key {command.key_id}")
    elif key.status == REVOKED or key.user_id != command.user_id:
        return
    else:
        key.status, key.updated_at = REVOKED, utcnow()
        uow.session.add(key)
    uow.publish(_revoked(envelope, key, "revoked"))


async def deactivate_user(envelope: Envelope[DeactivateUser], uow: UnitOfWork) -> None:
    """DEACTIVATED, every key revoked; a user not registered yet is kept as a tombstone."""
    user_id: UUID = envelope.message.user_id
    user = await uow.session.get(Account, user_id)
    if user is None:
        user = Account(user_id=user_id, status=UserStatus.DEACTIVATED, updated_at=utcnow())
        await _insert(uow, user, f"user {user_id}")
    elif user.status == UserStatus.DEACTIVATED:
        return
    else:
        user.status, user.reason, user.updated_at = UserStatus.DEACTIVATED, None, utcnow()
        uow.session.add(user)
    keys = (
        await uow.session.exec(
            select(AccountKey).where(
                AccountKey.user_id == user_id, col(AccountKey.status) == ACTIVE
            )
        )
    ).all()
    for key in keys:
        key.status, key.updated_at = REVOKED, utcnow()
        uow.session.add(key)
        uow.publish(_revoked(envelope, key, "its user was deactivated"))
    logger.info("user {} deactivated, {} key(s) revoked", user_id, len(keys))
    uow.publish(envelope.caused(UserStatusChanged(user_id=user_id, status=UserStatus.DEACTIVATED)))


HANDLERS: dict[str, Handler] = {
    RegisterUser.NAME: register_user,
    IssueApiKey.NAME: issue_api_key,
    RevokeApiKey.NAME: revoke_api_key,
    DeactivateUser.NAME: deactivate_user,
}
