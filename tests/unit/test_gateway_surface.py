"""The gateway's public surface through real HTTP on the app: headers, docs, metrics, 413."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.settings import DEV_API_KEY, Settings
from gateway.app import create_app
from gateway.limits import MAX_BODY_BYTES
from gateway.metrics import serve_metrics


def settings(**values: Any) -> Settings:
    """Settings from these values alone: no `.env`, no `WARREN_*` (see conftest)."""
    return Settings(_env_file=None, **values)


def client(base_url: str = "http://gateway.test", **values: Any) -> httpx.AsyncClient:
    """An HTTP client on a fresh app, with no lifespan: nothing here needs the database."""
    transport = httpx.ASGITransport(app=create_app(settings(**values)))
    headers = {"Authorization": f"Bearer {DEV_API_KEY}"}
    return httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers)


def assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_every_answer_carries_the_security_headers_and_no_hsts_over_plain_http() -> None:
    async with client() as http:
        ok, missing = await http.get("/healthz"), await http.get("/no-such-page")

    assert ok.status_code == 200 and missing.status_code == 404
    for response in (ok, missing):
        assert_security_headers(response)
        assert response.headers["content-security-policy"].startswith("default-src 'none';")
        assert "strict-transport-security" not in response.headers


async def test_hsts_is_sent_when_the_request_came_over_https() -> None:
    async with client(base_url="https://gateway.test") as http:
        response = await http.get("/healthz")

    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert_security_headers(response)


async def test_the_docs_pages_load_their_assets_under_their_own_csp() -> None:
    async with client() as http:
        docs, redoc = await http.get("/docs"), await http.get("/redoc")
        schema = await http.get("/openapi.json")

    assert docs.status_code == redoc.status_code == schema.status_code == 200
    assert "SwaggerUIBundle" in docs.text and "/openapi.json" in docs.text
    csp = docs.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net" in csp
    assert "https://cdn.jsdelivr.net" in csp.split("style-src")[1].split(";")[0]
    assert "worker-src blob:" in redoc.headers["content-security-policy"]
    assert schema.headers["content-security-policy"].startswith("default-src 'none';")
    assert_security_headers(docs)


@pytest.mark.parametrize("values", [{"gateway_docs": False}, {"gateway_docs": "off"}])
async def test_the_docs_switch_removes_docs_redoc_and_the_schema(values: dict[str, Any]) -> None:
    async with client(**values) as http:
        answers = [await http.get(p) for p in ("/docs", "/redoc", "/openapi.json")]

    assert [a.status_code for a in answers] == [404, 404, 404]
    assert answers[0].headers["content-type"] == "application/problem+json"


async def test_metrics_are_on_the_public_port_unless_a_metrics_port_is_set() -> None:
    async with client() as http:
        public = await http.get("/metrics")
    async with client(gateway_metrics_port=0) as http:
        moved = await http.get("/metrics")

    assert public.status_code == 200 and "warren_gateway_requests_total" in public.text
    assert moved.status_code == 404


@pytest.fixture
def metrics_listener() -> Iterator[str]:
    """The separate metrics listener on any free loopback port; its base URL."""
    server = serve_metrics(settings(gateway_metrics_port=0))
    assert server is not None
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


async def test_a_metrics_port_serves_metrics_on_loopback(metrics_listener: str) -> None:
    assert serve_metrics(settings()) is None
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{metrics_listener}/metrics")

    assert response.status_code == 200
    assert "warren_gateway_requests_total" in response.text


async def test_the_gateway_opens_its_metrics_listener_while_it_runs(tmp_path: Path) -> None:
    # given a gateway told to keep metrics off its public port, with no broker to reach
    app = create_app(
        settings(var_dir=tmp_path, gateway_metrics_port=0, broker_url="amqp://u:p@127.0.0.1:9/")
    )
    async with httpx.AsyncClient() as http:
        # when it runs, the listener answers; once it stops, the port is closed
        async with app.router.lifespan_context(app):
            url = f"http://127.0.0.1:{app.state.metrics_listener.server_port}/metrics"
            assert "warren_gateway_requests_total" in (await http.get(url)).text
        with pytest.raises(httpx.ConnectError):
            await http.get(url)


async def test_a_chunked_body_over_the_limit_gets_413_problem_json() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"customer_id": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    async with client() as http:
        response = await http.post(
            "/orders", content=chunks(), headers={"content-type": "application/json"}
        )

    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    assert_security_headers(response)
