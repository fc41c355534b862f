"""Placing orders: the `POST /orders` that arrive together are stored in one transaction.

Each accepted order is its status row, its history's first entry, its idempotency key and its
`PlaceOrder` in the outbox, as before; what changes is that the requests waiting while a
transaction runs share the next one: one write lock, one multi-row insert per table, one
commit (one fsync). Every request still gets its answer only once its order is on disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.envelope import Envelope
from contracts.orders import OrderStatus, PlaceOrder
from gateway.problems import ProblemError
from gateway.schemas import OrderOut, PlaceOrderRequest
from gateway.tables import HISTORY, KEYS, VIEWS
from outbox.db import rows
from outbox.tables import utcnow
from outbox.unit_of_work import UnitOfWork
from workers.runtime import tracing

BATCH_LIMIT = 64  # requests per transaction: bounds the statement and the wait of the last one
KEY_REUSED = ProblemError(
    422, "Idempotency-Key reused", "This Idempotency-Key was used with a different request body."
)

Outcome = tuple[OrderOut, bool] | Exception  # (order, created), or what to raise instead
Show = Callable[[AsyncSession, str, str], Awaitable[OrderOut]]


def request_hash(body: PlaceOrderRequest) -> str:
    """A fingerprint of a request body, to tell a retry from a different request."""
    return _fingerprint(body.model_dump(mode="json"))


def _fingerprint(dumped: dict[str, Any]) -> str:
    canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Placement:
    """One `POST /orders` waiting for its transaction."""

    client: str
    body: PlaceOrderRequest
    key: str | None
    traceparent: str | None
    dumped: dict[str, Any] = field(init=False)  # the body as JSON values, made once
    fingerprint: str = field(init=False)  # only a keyed request is ever compared
    done: asyncio.Future[Outcome] = field(init=False)

    def __post_init__(self) -> None:
        self.dumped = self.body.model_dump(mode="json")
        self.fingerprint = "" if self.key is None else _fingerprint(self.dumped)
        self.done = asyncio.get_running_loop().create_future()


class Placer:
    """Queues placements and stores them, those that wait together in one transaction."""

    def __init__(self, uow: Callable[[], UnitOfWork], show: Show, spans: tracing.Spans) -> None:
        self._uow, self._show, self._spans = uow, show, spans
        self._waiting: list[Placement] = []
        self._writer: asyncio.Task[None] | None = None

    async def place(self, placement: Placement) -> tuple[OrderOut, bool]:
        """Store the order (or find the one its key made): `(order, created)`."""
        self._waiting.append(placement)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        # the writer owns the transaction: a request that goes away does not cancel it
        outcome = await asyncio.shield(placement.done)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _write(self) -> None:
        while self._waiting:
            batch: list[Placement] = []
            try:
                outcomes = await self._store_waiting(batch)
            except BaseException as exc:  # each of the batch hears it (nothing was stored)
                for placement in batch or self._waiting[:BATCH_LIMIT]:
                    if not placement.done.done():
                        placement.done.set_exception(exc)
                del self._waiting[: len(batch) or BATCH_LIMIT]
                if not isinstance(exc, Exception):
                    raise
                continue
            del self._waiting[: len(batch)]
            for placement, outcome in zip(batch, outcomes, strict=True):
                if not placement.done.done():
                    placement.done.set_result(outcome)

    async def _store_waiting(self, batch: list[Placement]) -> list[Outcome]:
        """Store the first waiting placements, which it puts in `batch`: their outcomes."""
        try:
            async with self._uow() as uow:
                await uow.session.connection()  # the write lock: requests queue meanwhile
                batch.extend(self._waiting[:BATCH_LIMIT])
                outcomes = await self._store(uow, batch)
                await uow.commit()
            return outcomes
        except IntegrityError:  # another gateway stored one of these keys since our read
            return [await self._alone(placement) for placement in batch]

    async def _alone(self, placement: Placement) -> Outcome:
        """Store one placement in its own transaction; a failure is its own, not the batch's."""
        for attempt in (1, 2):  # the second read sees the key the other gateway committed
            try:
                async with self._uow() as uow:
                    (outcome,) = await self._store(uow, [placement])
                    await uow.commit()
                return outcome
            except IntegrityError as exc:
                if attempt == 2:
                    return exc
            except Exception as exc:  # this request's answer (a 503, say)
                return exc
        raise AssertionError("unreachable")

    async def _store(self, uow: UnitOfWork, batch: list[Placement]) -> list[Outcome]:
        keyed = [(p.client, p.key) for p in batch if p.key is not None]
        known: dict[tuple[str, str], Any] = {}
        if keyed:
            clients, keys = sorted({c for c, _ in keyed}), sorted({k for _, k in keyed})
            found = await rows(uow.session, _KEYS_OF, {"clients": clients, "keys": keys})
            known = {(r.client, r.key): r for r in found}  # a row of another pair is ignored
        outcomes: list[Outcome] = []
        views, histories, records = [], [], []
        for p in batch:
            seen = known.get((p.client, p.key)) if p.key is not None else None
            if seen is not None:
                outcomes.append(await self._replay(uow, p, seen))
                continue
            view, accepted = self._accept(uow, p)
            views.append(view)
            histories.append(accepted)
            shown = _shown(view, accepted)
            outcomes.append((shown, True))
            if p.key is not None:
                record = {"client": p.client, "key": p.key, "request_hash": p.fingerprint}
                made = {"order_id": view["order_id"], "created_at": view["created_at"]}
                records.append(record | made)
                known[(p.client, p.key)] = SimpleNamespace(shown=shown, **record)
        if views:
            await uow.session.exec(_ADD_VIEWS, params=views)
            await uow.session.exec(_ADD_HISTORY, params=histories)
        if records:
            await uow.session.exec(_ADD_KEYS, params=records)
        return outcomes

    async def _replay(self, uow: UnitOfWork, placement: Placement, seen: Any) -> Outcome:
        if seen.request_hash != placement.fingerprint:
            return KEY_REUSED
        shown = getattr(seen, "shown", None)  # made in this very batch
        if shown is None:
            try:
                shown = await self._show(uow.session, placement.client, seen.order_id)
            except ProblemError as problem:
                return problem
        return shown, False

    def _accept(self, uow: UnitOfWork, p: Placement) -> tuple[dict[str, Any], dict[str, Any]]:
        order_id, now = uuid.uuid4(), utcnow()
        currency = p.body.currency or "EUR"
        view = {
            "order_id": str(order_id),
            "client": p.client,
            "customer_id": p.body.customer_id,
            "status": OrderStatus.PENDING.value,
            "reason": None,
            "sequence": 0,
            "items": p.dumped["items"],
            "total_cents": None,
            "currency": currency,
            "created_at": now,
            "updated_at": now,
        }
        accepted = {
            "order_id": view["order_id"],
            "sequence": 0,
            "status": view["status"],
            "reason": "accepted",
            "at": now,
        }
        with self._spans.span("POST /orders", p.traceparent, order_id=str(order_id)) as span:
            command = _command(order_id, p.dumped, currency)
            uow.publish(Envelope(command, correlation_id=str(order_id), traceparent=span))
        return view, accepted


def _command(order_id: uuid.UUID, dumped: dict[str, Any], currency: str) -> PlaceOrder:
    """The order's `PlaceOrder`, validated in one call from the body's values."""
    return PlaceOrder.model_validate(
        {
            "order_id": order_id,
            "customer_id": dumped["customer_id"],
            "items": dumped["items"],
            "payment": dumped["payment"],
            "shipping_address": dumped["shipping_address"],
            "currency": currency,
        }
    )


def _shown(view: dict[str, Any], accepted: dict[str, Any]) -> OrderOut:
    """A new order as its client sees it (what `order_out` makes of its rows), in one call."""
    return OrderOut.model_validate(
        {
            "order_id": view["order_id"],
            "status": view["status"],
            "reason": None,
            "items": view["items"],
            "total": {"amount_cents": None, "currency": view["currency"]},
            "created_at": view["created_at"],
            "updated_at": view["updated_at"],
            "history": [
                {
                    "status": accepted["status"],
                    "reason": accepted["reason"],
                    "sequence": 0,
                    "at": accepted["at"],
                }
            ],
        }
    )


# Built once, run with parameters (see outbox.db.rows); the clients and keys expand per batch.
# Two `IN` lists, not one of (client, key) pairs: SQLite scans the whole table for a row-value
# `IN`, but searches the primary key for every client and key of two lists.
_KEYS_OF = select(KEYS.c.client, KEYS.c.key, KEYS.c.request_hash, KEYS.c.order_id).where(
    KEYS.c.client.in_(bindparam("clients", expanding=True)),
    KEYS.c.key.in_(bindparam("keys", expanding=True)),
)
_ADD_VIEWS, _ADD_HISTORY, _ADD_KEYS = insert(VIEWS), insert(HISTORY), insert(KEYS)
