"""The card provider service and payments' HTTP client, on SQLite and PostgreSQL ledgers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest

from tests.conftest import DEFAULT_BACKENDS, Backend
from tests.support.card_provider import start_provider
from tests.support.harness import free_port
from workers.payments.http_provider import HttpCardProvider, ProviderUnreachable
from workers.payments.model import ALREADY_CANCELLED, Approved, Declined
from workers.payments.provider import capture_key
from workers.runtime.breaker import CircuitBreaker, CircuitOpen
from workers.runtime.errors import InfrastructureError


@pytest.fixture(scope="module", params=DEFAULT_BACKENDS)
def ledger_backend(request: pytest.FixtureRequest) -> Backend:
    """The provider's ledger on the default SQLite driver and on PostgreSQL."""
    chosen: Backend = request.param
    return chosen


async def provider_at(
    request: pytest.FixtureRequest, tmp: Path, backend: Backend, **behaviour: str
) -> AsyncIterator[str]:
    if backend == "postgres":
        db_url = request.getfixturevalue("_pg_databases")()
    else:
        db_url = f"sqlite+inline:///{tmp / 'ledger.db'}"
    process, url = await start_provider(db_url, **behaviour)
    try:
        yield url
    finally:
        process.kill()


@pytest.fixture(scope="module")
async def provider_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ledger_backend: Backend,
) -> AsyncIterator[str]:
    """A well-behaved provider, shared by the module's tests (each uses its own orders)."""
    async for url in provider_at(request, tmp_path_factory.mktemp("ledger"), ledger_backend):
        yield url


@pytest.fixture(scope="module")
async def lossy_provider_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ledger_backend: Backend,
) -> AsyncIterator[str]:
    """A provider that loses the answer of every charge it makes."""
    tmp = tmp_path_factory.mktemp("lossy")
    async for url in provider_at(request, tmp, ledger_backend, lose_answer_rate="1"):
        yield url


async def ledger(url: str, order_id: UUID) -> list[dict]:
    """The provider's ledger entries of one order."""
    async with httpx.AsyncClient(base_url=url) as client:
        entries = (await client.get("/charges")).json()
    return [e for e in entries if e["order_id"] == str(order_id)]


async def test_the_same_key_charged_concurrently_is_charged_once(provider_url: str) -> None:
    client = HttpCardProvider(provider_url)
    order_id = uuid4()

    outcomes = await asyncio.gather(
        *(client.capture(order_id, "tok_visa", 1250, "EUR") for _ in range(8))
    )

    [charge] = await ledger(provider_url, order_id)
    assert charge["status"] == "charged" and charge["amount_cents"] == 1250
    assert set(outcomes) == {Approved(charge["payment_id"])}


async def test_a_refund_before_the_charge_voids_its_key_and_the_charge_is_declined(
    provider_url: str,
) -> None:
    client = HttpCardProvider(provider_url)
    order_id = uuid4()

    assert await client.refund(order_id) is None
    outcome = await client.capture(order_id, "tok_visa", 900, "EUR")

    assert outcome == Declined(ALREADY_CANCELLED)
    assert [e["status"] for e in await ledger(provider_url, order_id)] == ["voided"]


async def test_a_refund_gives_the_charge_back_once_however_often_asked(provider_url: str) -> None:
    client = HttpCardProvider(provider_url)
    order_id = uuid4()
    charged = await client.capture(order_id, "tok_visa", 900, "EUR")

    refunds = [await client.refund(order_id) for _ in range(3)]

    assert isinstance(charged, Approved) and refunds == [charged.payment_id] * 3
    [entry] = await ledger(provider_url, order_id)
    assert (entry["status"], entry["payment_id"]) == ("refunded", charged.payment_id)


async def test_a_declining_card_is_declined_and_recorded_under_its_key(provider_url: str) -> None:
    client = HttpCardProvider(provider_url)
    order_id = uuid4()
    assert await client.capture(order_id, "tok_declined", 900, "EUR") == Declined("card declined")
    assert (await client.lookup(capture_key(order_id)) or {})["status"] == "declined"


async def test_a_lost_answer_is_resolved_by_asking_the_provider_not_by_guessing(
    lossy_provider_url: str,
) -> None:
    client = HttpCardProvider(lossy_provider_url)
    order_id = uuid4()

    first = await client.capture(order_id, "tok_visa", 700, "EUR")
    again = await client.capture(order_id, "tok_visa", 700, "EUR")

    [charge] = await ledger(lossy_provider_url, order_id)
    assert charge["answer_lost"] is True
    assert first == again == Approved(charge["payment_id"])


async def test_an_unreachable_provider_is_an_infrastructure_failure_and_opens_the_breaker() -> None:
    breaker = CircuitBreaker(failures=2, reset_s=60)
    client = HttpCardProvider(f"http://127.0.0.1:{free_port()}", timeout_s=1, breaker=breaker)

    with pytest.raises(ProviderUnreachable) as failed:  # the charge and the lookup both fail
        await client.capture(uuid4(), "tok_visa", 700, "EUR")
    assert isinstance(failed.value, InfrastructureError)
    with pytest.raises(CircuitOpen):  # refused without a call
        await client.refund(uuid4())
    assert breaker.state == "open"


@pytest.fixture(scope="module")
async def failing_provider_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A provider that answers every charge and refund with 503 (the ledger is not the point)."""
    db_url = f"sqlite+inline:///{tmp_path_factory.mktemp('failing') / 'ledger.db'}"
    process, url = await start_provider(db_url, error_rate="1")
    yield url
    process.kill()


@pytest.fixture(scope="module")
async def declining_provider_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A provider that declines every charge."""
    db_url = f"sqlite+inline:///{tmp_path_factory.mktemp('declining') / 'ledger.db'}"
    process, url = await start_provider(db_url, decline_rate="1")
    yield url
    process.kill()


async def test_a_provider_error_charges_nothing_and_is_an_infrastructure_failure(
    failing_provider_url: str,
) -> None:
    client = HttpCardProvider(failing_provider_url)
    order_id = uuid4()

    with pytest.raises(InfrastructureError):
        await client.capture(order_id, "tok_visa", 700, "EUR")

    assert await ledger(failing_provider_url, order_id) == []


async def test_a_decline_rate_declines_and_records_the_decline(declining_provider_url: str) -> None:
    client = HttpCardProvider(declining_provider_url)
    order_id = uuid4()

    outcome = await client.capture(order_id, "tok_visa", 700, "EUR")

    assert outcome == Declined("insufficient funds")
    assert [e["status"] for e in await ledger(declining_provider_url, order_id)] == ["declined"]
