"""`POST /orders` on its ASGI fast path answers exactly as the FastAPI route does.

A request with `Content-Type: application/json; charset=utf-8` is not taken by the fast path, so
it shows what the FastAPI route answers; the same request with `application/json` is taken.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.settings import DEV_API_KEY, Settings
from gateway.app import create_app
from gateway.metrics import REQUESTS
from tests.support.orders import order_body

FAST = {"content-type": "application/json"}
ROUTED = {"content-type": "application/json; charset=utf-8"}  # left to the FastAPI route
TIMES = {"order_id", "created_at", "updated_at", "at"}
SECURITY = (
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "content-security-policy",
)


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A running gateway (its own SQLite database, no broker to reach) and a client on it."""
    settings = Settings(
        _env_file=None,
        var_dir=tmp_path,
        broker_url="amqp://u:p@127.0.0.1:9/",
        rate_limit_per_s=0.01,
        rate_limit_burst=12,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway.test", headers=headers
        ) as client:
            yield client


def shape(value: Any) -> Any:
    """The JSON's keys and values, with ids and times replaced by their format."""
    if isinstance(value, dict):
        return {k: _format(v) if k in TIMES else shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return value


def _format(value: str) -> str:
    return re.sub(r"[0-9a-f]", "0", value)


async def post(
    http: httpx.AsyncClient, body: Any, headers: dict[str, str], **extra: str
) -> httpx.Response:
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    return await http.post("/orders", content=content, headers=headers | extra)


async def test_a_placed_order_is_answered_as_the_fastapi_route_answers(
    http: httpx.AsyncClient,
) -> None:
    fast = await post(http, order_body(), FAST, **{"Idempotency-Key": "a"})
    routed = await post(http, order_body(), ROUTED, **{"Idempotency-Key": "b"})

    for answer in (fast, routed):
        assert answer.status_code == 202, answer.text
        order = answer.json()
        assert answer.headers["location"] == f"/orders/{order['order_id']}"
        assert answer.headers["retry-after"] == "1"
        assert answer.headers["content-type"] == "application/json"
        assert "idempotent-replayed" not in answer.headers
        assert all(name in answer.headers for name in SECURITY)
    assert shape(fast.json()) == shape(routed.json())
    assert REQUESTS.labels("POST", "/orders", "202")._value.get() >= 2


async def test_a_replay_on_the_fast_path_returns_the_first_order(http: httpx.AsyncClient) -> None:
    first = await post(http, order_body(), FAST, **{"Idempotency-Key": "same"})
    again = await post(http, order_body(), FAST, **{"Idempotency-Key": "same"})
    other = await post(http, order_body(quantity=2), FAST, **{"Idempotency-Key": "same"})

    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert "different request body" in other.json()["detail"]


@pytest.mark.parametrize(
    ("body", "extra", "field"),
    [
        (order_body() | {"coupon": "FREE"}, {}, "coupon"),
        (order_body(quantity=0), {}, "items.0.quantity"),
        (b"{not json", {}, "JSON decode error"),
        (b"", {}, "body"),
        (order_body(), {"Idempotency-Key": "k" * 256}, "idempotency-key"),
        (order_body(), {"traceparent": "0" * 56}, "traceparent"),
    ],
)
async def test_what_the_fast_path_refuses_gets_the_fastapi_routes_problem(
    http: httpx.AsyncClient, body: Any, extra: dict[str, str], field: str
) -> None:
    fast = await post(http, body, FAST, **extra)
    routed = await post(http, body, ROUTED, **extra)

    assert fast.status_code == routed.status_code == 422, fast.text
    assert fast.headers["content-type"] == "application/problem+json"
    assert fast.json() == routed.json()
    assert field in fast.json()["detail"]


async def test_no_key_gets_401_and_a_flood_gets_429_problems(http: httpx.AsyncClient) -> None:
    anonymous = await post(http, order_body(), FAST, Authorization="")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert all(name in anonymous.headers for name in SECURITY)

    answers = [await post(http, order_body(), FAST) for _ in range(14)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and int(limited[0].headers["retry-after"]) >= 1
    assert limited[0].json()["status"] == 429 and limited[0].json()["instance"] == "/orders"


@pytest.mark.parametrize(
    ("error", "status", "title"),
    [
        (OSError("the disk is gone"), 503, "Service unavailable"),
        (RuntimeError("a bug"), 500, "Internal error"),
    ],
)
async def test_a_failing_desk_gets_a_problem_with_the_security_headers(
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
    title: str,
) -> None:
    async def failing(*_: Any) -> None:
        raise error

    transport = http._transport
    assert isinstance(transport, httpx.ASGITransport)
    monkeypatch.setattr(transport.app.state.desk, "place", failing)  # type: ignore[attr-defined]
    before = REQUESTS.labels("POST", "/orders", str(status))._value.get()

    answer = await post(http, order_body(), FAST)

    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == title
    assert all(name in answer.headers for name in SECURITY)
    assert REQUESTS.labels("POST", "/orders", str(status))._value.get() == before + 1


async def test_an_order_shown_on_the_fast_path_is_shown_as_the_fastapi_route_shows_it(
    http: httpx.AsyncClient,
) -> None:
    placed = (await post(http, order_body(), FAST)).json()
    order_id = placed["order_id"]
    before = REQUESTS.labels("GET", "/orders/{order_id}", "200")._value.get()

    fast = await http.get(f"/orders/{order_id}")
    waited = await http.get(f"/orders/{order_id}", params={"wait": "0.05"})
    routed = await http.get(f"/orders/{order_id.upper()}")  # not canonical: left to FastAPI

    for answer in (fast, waited, routed):
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert all(name in answer.headers for name in SECURITY)
        assert answer.json() == placed
    assert fast.content == routed.content
    assert REQUESTS.labels("GET", "/orders/{order_id}", "200")._value.get() == before + 3


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/orders/00000000-0000-4000-8000-000000000000", 404),
        ("/orders/00000000-0000-4000-8000-000000000000?wait=0.01", 404),
        ("/orders/00000000-0000-4000-8000-000000000000?wait=31", 422),
        ("/orders/00000000-0000-4000-8000-000000000000?wait=soon", 422),
        ("/orders/not-a-uuid", 422),
    ],
)
async def test_an_order_not_shown_gets_the_fastapi_routes_problem(
    http: httpx.AsyncClient, path: str, status: int
) -> None:
    answer = await http.get(path)

    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert all(name in answer.headers for name in SECURITY)
    assert answer.json()["instance"] == path.partition("?")[0]


async def test_showing_an_order_needs_a_key(http: httpx.AsyncClient) -> None:
    placed = (await post(http, order_body(), FAST)).json()

    answer = await http.get(f"/orders/{placed['order_id']}", headers={"Authorization": ""})

    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
