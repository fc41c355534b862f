"""The card provider over HTTP: idempotency keys, a timeout, a circuit breaker, no guessing.

An answer that may hide a charge (a timeout, a dropped connection, a 5xx) is ambiguous: the
provider is asked what it recorded under the key. Nothing is retried here; the runtime retries
the message, and the same key makes every retry safe.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from workers.payments.model import ALREADY_CANCELLED, Approved, ChargeOutcome, Declined
from workers.payments.provider import CardProvider, capture_key
from workers.runtime.breaker import CircuitBreaker
from workers.runtime.errors import InfrastructureError, PermanentError, TransientError
from workers.runtime.httpclient import httpx


class ProviderUnreachable(InfrastructureError):
    """The provider gave no usable answer (timeout, connection refused, 5xx)."""


class Ambiguous(TransientError):
    """The provider may or may not have acted; only asking it again by key can tell."""


def charge_outcome(entry: dict[str, Any]) -> ChargeOutcome:
    """What a ledger entry means for the capture it answers."""
    status = entry["status"]
    if status == "charged":
        return Approved(entry["payment_id"])
    if status == "declined":
        return Declined(entry.get("decline_reason") or "card declined")
    return Declined(ALREADY_CANCELLED)  # refunded or voided: a refund came first


def read_answer(response: httpx.Response) -> dict[str, Any] | None:
    """The ledger entry a 200 carries; None for 404; raise for an answer that settles nothing."""
    if response.status_code == 200:
        entry: dict[str, Any] = response.json()
        return entry
    if response.status_code == 404:
        return None
    if response.status_code >= 500:
        raise Ambiguous(f"card provider answered {response.status_code}")
    raise PermanentError(f"card provider refused the request ({response.status_code})")


class HttpCardProvider(CardProvider):
    """Calls the provider service at `url`; one breaker per process guards every call."""

    def __init__(
        self, url: str, *, timeout_s: float = 5.0, breaker: CircuitBreaker | None = None
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.breaker = breaker or CircuitBreaker()
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # built on first use: nothing connects at start-up
            self._client = httpx.AsyncClient(base_url=self.url, timeout=self.timeout_s)
        return self._client

    async def _call(self, send: Callable[[], Awaitable[httpx.Response]]) -> dict[str, Any] | None:
        self.breaker.before_call()
        try:
            response = await send()
        except httpx.TransportError as exc:
            self.breaker.failed()
            raise ProviderUnreachable(f"card provider: {type(exc).__name__}: {exc}") from exc
        except BaseException:  # cancelled mid-call: no verdict on the provider
            self.breaker.released()
            raise
        try:
            entry = read_answer(response)
        except Ambiguous as exc:
            self.breaker.failed()
            raise ProviderUnreachable(str(exc)) from exc
        finally:
            if response.status_code < 500:  # it answered, even if to refuse
                self.breaker.succeeded()
        return entry

    async def lookup(self, key: str) -> dict[str, Any] | None:
        """What the provider recorded under `key`, or None."""
        return await self._call(lambda: self._http().get(f"/charges/{key}"))

    async def capture(
        self, order_id: UUID, token: str, amount_cents: int, currency: str
    ) -> ChargeOutcome:
        """Charge under the order's key; after an ambiguous answer, ask what happened."""
        key = capture_key(order_id)
        body = {
            "idempotency_key": key,
            "order_id": str(order_id),
            "token": token,
            "amount_cents": amount_cents,
            "currency": currency,
        }
        try:
            entry = await self._call(lambda: self._http().post("/charges", json=body))
        except ProviderUnreachable as exc:
            entry = await self.lookup(key)
            if entry is None:  # not charged yet, or still in flight: retry with the same key
                raise ProviderUnreachable(f"capture of order {order_id} unsettled: {exc}") from exc
        assert entry is not None
        return charge_outcome(entry)

    async def refund(self, order_id: UUID) -> str | None:
        """Refund the order's charge by its key (voiding the key when nothing was charged)."""
        body = {"idempotency_key": capture_key(order_id), "order_id": str(order_id)}
        entry = await self._call(lambda: self._http().post("/refunds", json=body))
        assert entry is not None
        return entry.get("payment_id") if entry["status"] == "refunded" else None
