"""The provider's HTTP API: charge, refund and look up by idempotency key; list the ledger."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from outbox.db import create_engine, create_tables, session_factory
from workers.provider.ledger import LedgerEntry, entries, outcome, record_once, refund
from workers.provider.settings import ProviderSettings

Key = Annotated[str, Path(min_length=1, max_length=100)]
DECLINING_TOKENS = {"tok_declined": "card declined"}
KNOWN_TOKENS = {"tok_visa", "tok_flaky"}


class ChargeRequest(BaseModel):
    """A charge; the idempotency key makes a repeat return the first answer."""

    idempotency_key: str = Field(min_length=1, max_length=100)
    order_id: str = Field(min_length=1, max_length=64)
    token: str = Field(min_length=1, max_length=64)
    amount_cents: int = Field(ge=0, le=100_000_000)
    currency: str = Field(min_length=3, max_length=3)


class RefundRequest(BaseModel):
    """Refund whatever was charged under `idempotency_key` (and void the key if nothing was)."""

    idempotency_key: str = Field(min_length=1, max_length=100)
    order_id: str = Field(min_length=1, max_length=64)


def _answer(entry: LedgerEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json")


def create_app(settings: ProviderSettings) -> FastAPI:
    """The provider; its ledger lives in `settings.db_url`."""
    engine = create_engine(settings.db_url)
    sessions = session_factory(engine)
    chance = random.Random(settings.seed)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await create_tables(engine, [LedgerEntry])
        yield
        await engine.dispose()

    app = FastAPI(title="card provider", lifespan=lifespan)

    async def misbehave() -> None:
        await asyncio.sleep(settings.latency_ms / 1000)
        if chance.random() < settings.error_rate:
            raise HTTPException(503, "provider unavailable, nothing was done")

    def decline_reason(token: str) -> str | None:
        if token in DECLINING_TOKENS:
            return DECLINING_TOKENS[token]
        if token not in KNOWN_TOKENS:
            return "unknown card"
        return "insufficient funds" if chance.random() < settings.decline_rate else None

    @app.post("/charges")
    async def charge(request: ChargeRequest) -> JSONResponse:
        await misbehave()
        reason = decline_reason(request.token)
        entry = outcome(
            request.idempotency_key,
            request.order_id,
            request.amount_cents,
            request.currency,
            reason,
        )
        entry.answer_lost = reason is None and chance.random() < settings.lose_answer_rate
        async with sessions() as session:
            kept = await record_once(session, entry)
        if kept is entry and entry.answer_lost:
            return JSONResponse({"detail": "answer lost"}, status_code=502)
        return JSONResponse(_answer(kept))

    @app.post("/refunds")
    async def refund_charge(request: RefundRequest) -> dict[str, Any]:
        await misbehave()
        async with sessions() as session:
            return _answer(await refund(session, request.idempotency_key, request.order_id))

    @app.get("/charges/{key}")
    async def lookup(key: Key) -> dict[str, Any]:
        async with sessions() as session:
            entry = await session.get(LedgerEntry, key)
        if entry is None:
            raise HTTPException(404, "no charge under this key")
        return _answer(entry)

    @app.get("/charges")
    async def ledger() -> list[dict[str, Any]]:
        async with sessions() as session:
            return [_answer(entry) for entry in await entries(session)]

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
