"""The gateway's synchronous calls: failover between instances, breakers, 503 with Retry-After."""

from __future__ import annotations

import httpx
import pytest

from config.settings import Environment, Settings
from gateway.calls import ServiceCalls
from gateway.problems import ProblemError

A, B = "http://a:8080", "http://b:8080"


def settings(*urls: str, threshold: int = 2) -> Settings:
    return Settings(
        _env_file=None,
        env=Environment.TEST,
        shop_api_urls=",".join(urls),
        api_breaker_threshold=threshold,
        api_breaker_reset_s=5,
    )


def test_the_instances_of_a_service_come_from_its_api_urls_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WARREN_SHOP_API_URLS", "http://a:8080/, http://b:8080")
    assert Settings(_env_file=None).api_urls == {"shop": [A, B]}


async def test_a_call_moves_on_to_the_next_instance_when_one_is_down() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url.host))
        if request.url.host == "a":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"ok": True})

    calls = ServiceCalls("shop", settings(A, B), httpx.MockTransport(answer))
    answers = [await calls.request("GET", "/x") for _ in range(4)]
    await calls.close()

    assert {a.status_code for a in answers} == {200}
    # a failed twice, then its breaker kept further calls away from it
    assert seen.count("a") == 2 and seen.count("b") == 4


async def test_a_client_gets_503_with_retry_after_when_no_instance_answers() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500)

    calls = ServiceCalls("shop", settings(A, B, threshold=1), httpx.MockTransport(answer))
    with pytest.raises(ProblemError) as first:
        await calls.request("GET", "/x")
    with pytest.raises(ProblemError) as open_circuit:
        await calls.request("GET", "/x")
    await calls.close()

    assert first.value.status == 503 and first.value.headers["Retry-After"] == "5"
    assert open_circuit.value.status == 503 and "circuit open" in str(open_circuit.value.detail)


async def test_a_4xx_is_the_answer_not_a_failure() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"title": "Cart is not open"})

    calls = ServiceCalls("shop", settings(A, threshold=1), httpx.MockTransport(answer))
    answers = [await calls.request("PUT", "/x", {}) for _ in range(3)]
    await calls.close()
    assert [a.status_code for a in answers] == [409, 409, 409]


async def test_a_service_without_instances_is_503_not_a_hang() -> None:
    calls = ServiceCalls("shop", Settings(_env_file=None, env=Environment.TEST))
    with pytest.raises(ProblemError) as refused:
        await calls.request("GET", "/x")
    await calls.close()
    assert refused.value.status == 503 and "not configured" in str(refused.value.detail)
