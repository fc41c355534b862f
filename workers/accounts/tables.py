"""The accounts database: users, the emails they claim, and their keys (hashes only)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from outbox.tables import UtcDateTime


class Account(SQLModel, table=True):
    """A user. A row without an email is a tombstone: deactivated before it was registered."""

    __tablename__ = "account"

    user_id: UUID = Field(primary_key=True)
    email: str | None = Field(default=None, max_length=254)
    name: str | None = Field(default=None, max_length=200)
    status: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=200)
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class EmailClaim(SQLModel, table=True):
    """Who registered an email first (lower-cased): the primary key keeps emails unique."""

    __tablename__ = "account_email"

    email: str = Field(primary_key=True, max_length=254)
    user_id: UUID


class AccountKey(SQLModel, table=True):
    """An API key of a user, by its SHA-256 hash; REVOKED for good once revoked."""

    __tablename__ = "account_key"

    key_id: UUID = Field(primary_key=True)
    user_id: UUID = Field(index=True)
    key_hash: str | None = Field(default=None, max_length=64)
    status: str = Field(max_length=20)
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


TABLES = (Account, EmailClaim, AccountKey)
