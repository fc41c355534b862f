"""schemathesis against the running gateway: no 5xx and no answer that breaks its own schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from config.settings import DEV_API_KEY
from contracts.accounts import RegisterUser
from tests.support.accounts import create_user, issue_key
from tests.support.harness import free_port
from tests.support.roles import api_services, consumer_of
from tests.support.system import System

AUTH = {"Authorization": f"Bearer {DEV_API_KEY}"}


class Gateway:
    def __init__(self, url: str, user_auth: dict[str, str]) -> None:
        self.url, self.user_auth = url, user_auth


@pytest.fixture(scope="module")
async def gateway(
    amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    """The gateway with the services its synchronous routes need, and a user's key for /carts."""
    tmp = Path(tmp_path_factory.mktemp("fuzz"))
    needed = (consumer_of(RegisterUser).name, *api_services())
    urls = {s: f"sqlite+inline:///{tmp / s}.db" for s in (*needed, "gateway")}
    system = System(amqp_url, urls, tmp)
    try:
        await system.start(*needed)
        port = free_port()
        await system.start_gateway(
            port, WARREN_RATE_LIMIT_PER_S="10000", WARREN_RATE_LIMIT_BURST="10000"
        )
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=40) as operator:
            user = await create_user(operator)
            key = await issue_key(operator, user["user_id"])
        yield Gateway(url, {"Authorization": f"Bearer {key['api_key']}"})
    finally:
        system.stop_all()


def test_the_gateway_honours_its_openapi_document(gateway: Gateway) -> None:
    """Every operation, fuzzed: no 5xx, and every answer matches the documented status,
    content type and schema (schemathesis's checks). Carts are a user's, so /carts operations
    go with a user's key (to the carts service); the rest with an operator's."""
    api = schemathesis.openapi.from_url(f"{gateway.url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.label for op in operations} >= {
        "POST /orders",
        "GET /orders/{order_id}",
        "POST /orders/{order_id}/cancel",
        "POST /users",
        "PUT /carts/{cart_id}/items/{sku}",
        "POST /carts/{cart_id}/checkout",
    }
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def honours_schema(case: schemathesis.Case) -> None:
            if case.headers and "idempotency-key" in {k.lower() for k in case.headers}:
                # a reused key with another body is refused by design (422): keep keys unique
                case.headers = {
                    k: v for k, v in case.headers.items() if k.lower() != "idempotency-key"
                }
                case.headers["Idempotency-Key"] = str(uuid.uuid4())
            carts = case.operation.path.startswith("/carts")
            # a cart's 422s depend on state, not on the schema: a SKU the catalog does not sell,
            # an empty cart's checkout; schema-valid data may be refused there
            case.call_and_validate(
                headers=gateway.user_auth if carts else AUTH,
                excluded_checks=[positive_data_acceptance] if carts else [],
            )

        honours_schema()
