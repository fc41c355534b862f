"""Contracts owned by the accounts service: users, their API keys, and what becomes of them.

The gateway sends the commands from its outbox and keeps its authentication view from the
events. No contract carries an API key: only its SHA-256 hash travels, and no event carries a
user's email.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import ConfigDict, StringConstraints

from contracts.base import Command, Event, ShortText

# One `@`, no white space (of any script) or control characters, a dot in the domain: what a
# mailbox needs to be told apart, not a full RFC 5322 parser. Stored lower-cased, so that
# uniqueness ignores case.
Email = Annotated[
    str,
    StringConstraints(
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s\x00-\x1F\x7F-\x9F]+@[^@\s\x00-\x1F\x7F-\x9F]+\.[^@\s\x00-\x1F\x7F-\x9F]+$",
    ),
]
KeyHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

_USER = "6f1c1d52-8a0e-4f53-9b8e-2b1d8f5b8a10"
_KEY = "1b7d2c9e-0f7a-4c3e-8a55-6e0c6f0b2a3d"
_HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


class UserStatus(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    REJECTED = "REJECTED"
    DEACTIVATED = "DEACTIVATED"

    @property
    def is_terminal(self) -> bool:
        """No change is expected without a new request (what a long-poll waits for)."""
        return self is not UserStatus.PENDING


class RegisterUser(Command):
    """Register a user; an email already registered ends the user REJECTED."""

    NAME = "accounts.RegisterUser"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"user_id": _USER, "email": "ada@example.com", "name": "Ada"}]
        }
    )

    user_id: UUID
    email: Email
    name: ShortText


class IssueApiKey(Command):
    """Record a key the gateway issued (its hash only); refused if the user is not active."""

    NAME = "accounts.IssueApiKey"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"user_id": _USER, "key_id": _KEY, "key_hash": _HASH}]}
    )

    user_id: UUID
    key_id: UUID
    key_hash: KeyHash


class RevokeApiKey(Command):
    """Revoke one key of a user, for good."""

    NAME = "accounts.RevokeApiKey"
    VERSION = 1
    model_config = ConfigDict(json_schema_extra={"examples": [{"user_id": _USER, "key_id": _KEY}]})

    user_id: UUID
    key_id: UUID


class DeactivateUser(Command):
    """Deactivate a user and revoke every key they have."""

    NAME = "accounts.DeactivateUser"
    VERSION = 1
    model_config = ConfigDict(json_schema_extra={"examples": [{"user_id": _USER}]})

    user_id: UUID


class UserStatusChanged(Event):
    """A user became ACTIVE, REJECTED (with a reason) or DEACTIVATED."""

    NAME = "accounts.UserStatusChanged"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"user_id": _USER, "status": "ACTIVE", "reason": None}]}
    )

    user_id: UUID
    status: UserStatus
    reason: ShortText | None = None


class ApiKeyRevoked(Event):
    """A key is refused from now on: revoked, its user deactivated, or issued to no active user."""

    NAME = "accounts.ApiKeyRevoked"
    VERSION = 1
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"user_id": _USER, "key_id": _KEY, "reason": "revoked by its owner"}]
        }
    )

    user_id: UUID
    key_id: UUID
    reason: ShortText
