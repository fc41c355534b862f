"""What payments makes of the card provider's answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from workers.payments.http_provider import Ambiguous, charge_outcome, read_answer
from workers.payments.model import ALREADY_CANCELLED, Approved, Declined
from workers.runtime.errors import PermanentError, TransientError


def entry(status: str, order_id: str = "o1", payment_id: str | None = "pay_1") -> dict[str, Any]:
    return {"status": status, "order_id": order_id, "payment_id": payment_id}


def test_a_charged_entry_is_approved_with_its_payment_id() -> None:
    assert charge_outcome(entry("charged")) == Approved("pay_1")


def test_a_declined_entry_is_declined_with_the_providers_reason() -> None:
    declined = entry("declined", payment_id=None) | {"decline_reason": "insufficient funds"}
    assert charge_outcome(declined) == Declined("insufficient funds")


@pytest.mark.parametrize("status", ["refunded", "voided"])
def test_a_charge_refunded_or_voided_first_answers_already_cancelled(status: str) -> None:
    assert charge_outcome(entry(status)) == Declined(ALREADY_CANCELLED)


def test_a_200_carries_the_entry_and_a_404_means_nothing_recorded() -> None:
    assert read_answer(httpx.Response(200, json=entry("charged"))) == entry("charged")
    assert read_answer(httpx.Response(404, json={"detail": "no charge"})) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_settles_nothing_and_is_worth_asking_again(status: int) -> None:
    with pytest.raises(Ambiguous) as raised:
        read_answer(httpx.Response(status))
    assert isinstance(raised.value, TransientError)


@pytest.mark.parametrize("status", [400, 401, 422])
def test_a_refused_request_is_not_retried(status: int) -> None:
    with pytest.raises(PermanentError):
        read_answer(httpx.Response(status))
