"""The provider's ledger: one row per idempotency key, written once with its final outcome."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import uuid4

from sqlalchemy import Column
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from outbox.tables import UtcDateTime, utcnow


def _timestamp(**kw: Any) -> Any:
    return Field(sa_column=Column(UtcDateTime(), **kw))


class ChargeStatus(StrEnum):
    """A charge's life at the provider; `voided` is a refund that came before any charge."""

    CHARGED = "charged"
    DECLINED = "declined"
    REFUNDED = "refunded"
    VOIDED = "voided"


class LedgerEntry(SQLModel, table=True):
    """What the provider did for one idempotency key."""

    __tablename__ = "provider_ledger"

    idempotency_key: str = Field(primary_key=True, max_length=100)
    order_id: str = Field(max_length=64, index=True)
    status: str = Field(max_length=16)
    payment_id: str | None = Field(default=None, max_length=64, unique=True)
    amount_cents: int = 0
    currency: str | None = Field(default=None, max_length=3)
    decline_reason: str | None = Field(default=None, max_length=200)
    answer_lost: bool = False  # the charge was made and its first answer deliberately dropped
    created_at: datetime = _timestamp(nullable=False, default=utcnow)
    refunded_at: datetime | None = _timestamp(nullable=True)


async def record_once(session: AsyncSession, entry: LedgerEntry) -> LedgerEntry:
    """Insert `entry` unless its key exists; the entry that is kept (same key, same answer)."""
    session.add(entry)
    try:
        await session.commit()
    except IntegrityError:  # a concurrent request, or a refund, took this key first
        await session.rollback()
        kept = await session.get(LedgerEntry, entry.idempotency_key)
        assert kept is not None
        return kept
    return entry


def outcome(
    key: str, order_id: str, amount_cents: int, currency: str, reason: str | None
) -> LedgerEntry:
    """The entry for a charge that was made (`reason` None) or declined."""
    fields: dict[str, Any] = {
        "idempotency_key": key,
        "order_id": order_id,
        "amount_cents": amount_cents,
        "currency": currency,
    }
    if reason is None:
        return LedgerEntry(**fields, status=ChargeStatus.CHARGED, payment_id=f"pay_{uuid4().hex}")
    return LedgerEntry(**fields, status=ChargeStatus.DECLINED, decline_reason=reason)


async def refund(session: AsyncSession, key: str, order_id: str) -> LedgerEntry:
    """Refund the charge made under `key`; with none yet, void the key so no charge follows."""
    entry = await session.get(LedgerEntry, key, with_for_update=True, populate_existing=True)
    if entry is None:
        void = LedgerEntry(idempotency_key=key, order_id=order_id, status=ChargeStatus.VOIDED)
        entry = await record_once(session, void)
        if entry.status != ChargeStatus.CHARGED:
            return entry
        entry = await session.get(LedgerEntry, key, with_for_update=True, populate_existing=True)
        assert entry is not None
    if entry.status == ChargeStatus.CHARGED:
        entry.status = ChargeStatus.REFUNDED
        entry.refunded_at = utcnow()
        session.add(entry)
    await session.commit()
    return entry


async def entries(session: AsyncSession) -> list[LedgerEntry]:
    """The whole ledger, oldest first."""
    return list(
        (await session.exec(select(LedgerEntry).order_by(col(LedgerEntry.created_at)))).all()
    )
