"""Settings refuse unsafe production values and derive database and broker URLs (config/)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiormq import Connection
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from config.settings import (
    DEV_API_KEY,
    DEV_API_KEY_ENTRY,
    Environment,
    Settings,
    hash_api_key,
)
from workers.runtime.discovery import services

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"

SAFE_PRODUCTION: dict[str, Any] = {
    "env": "production",
    "broker_url": "amqp://warren:s3cr3t-Broker@rabbitmq:5672/warren",
    "management_password": "s3cr3t-Mgmt",
    "api_keys": [f"shop:{hash_api_key('a-real-key')}"],
    "billing_db_url": "postgresql+asyncpg://warren:s3cr3t-Db@postgres:5432/warren_billing",
}


def settings(**values: Any) -> Settings:
    """Settings from these values alone: no `.env`, no `WARREN_*` (see conftest)."""
    return Settings(_env_file=None, **values)


def refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as refused:
        settings(**values)
    return str(refused.value)


def test_a_safe_production_configuration_is_accepted() -> None:
    production = settings(**SAFE_PRODUCTION)

    assert production.env is Environment.PRODUCTION


def test_the_dev_defaults_are_fine_outside_production() -> None:
    assert settings().env is Environment.DEV
    assert settings(env="test").env is Environment.TEST


def test_production_with_the_dev_defaults_names_every_unsafe_variable() -> None:
    message = refusal(env="production")

    assert "WARREN_ENV=production" in message
    assert "WARREN_BROKER_URL" in message
    assert "WARREN_MANAGEMENT_PASSWORD" in message
    assert ".env.example" in message


def test_the_dev_api_key_is_a_default_only_outside_production() -> None:
    assert settings().api_keys == [DEV_API_KEY_ENTRY]
    safe = {
        "broker_url": "amqp://warren:s3cret-enough@rabbitmq/",
        "management_password": "s3cret-enough",
    }
    assert settings(env="production", **safe).api_keys == []


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"broker_url": "amqp://guest:guest@rabbitmq:5672/"}, "WARREN_BROKER_URL"),
        ({"broker_url": "amqp://warren:admin@rabbitmq:5672/"}, "WARREN_BROKER_URL"),
        ({"broker_url": "amqp://warren@rabbitmq:5672/"}, "WARREN_BROKER_URL"),
        ({"broker_url": "amqp://rabbitmq:5672/"}, "WARREN_BROKER_URL"),
        ({"management_password": "guest"}, "WARREN_MANAGEMENT_PASSWORD"),
        ({"management_password": ""}, "WARREN_MANAGEMENT_PASSWORD"),
        (
            {"api_keys": [f"shop:{hash_api_key('a-real-key')}", f"x:{hash_api_key(DEV_API_KEY)}"]},
            "WARREN_API_KEYS",
        ),
        (
            {"gateway_db_url": "postgresql+asyncpg://postgres:postgres@db/warren_gateway"},
            "WARREN_GATEWAY_DB_URL",
        ),
        (
            {"billing_db_url": "postgresql+asyncpg://warren:password@db/warren_billing"},
            "WARREN_BILLING_DB_URL",
        ),
        (
            {"ledger_db_url": "postgresql+asyncpg://warren:changeme@db/warren_ledger"},
            "WARREN_LEDGER_DB_URL",
        ),
    ],
)
def test_production_refuses_one_unsafe_value_and_names_its_variable(
    change: dict[str, Any], variable: str
) -> None:
    # given an otherwise safe production configuration with one unsafe value
    message = refusal(**(SAFE_PRODUCTION | change))

    # then the refusal names that variable, and no other
    named = set(re.findall(r"WARREN_[A-Z_]+_(?:URL|PASSWORD|KEYS)", message))
    assert named == {variable}


def test_a_database_without_password_is_not_a_default_password() -> None:
    # peer or trust authentication, e.g. a socket connection in the same pod
    production = settings(**SAFE_PRODUCTION, ledger_db_url="postgresql+asyncpg:///ledger")

    assert production.database_url("ledger") == "postgresql+asyncpg:///ledger"


@pytest.mark.parametrize("service", [s.name for s in services()])
def test_a_service_without_database_url_gets_its_own_sqlite_file_under_var_dir(
    tmp_path: Path, service: str
) -> None:
    url = make_url(settings(var_dir=tmp_path).database_url(service))

    assert url.drivername == "sqlite+inline"
    assert Path(str(url.database)) == tmp_path / f"{service}.db"


def test_each_service_keeps_its_own_database_url() -> None:
    configured = settings(billing_db_url="postgresql+asyncpg://w:x@db/billing")

    assert configured.database_url("billing") == "postgresql+asyncpg://w:x@db/billing"
    assert configured.database_url("ledger").startswith("sqlite+inline:///")


def test_any_service_takes_its_database_url_from_its_own_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # no settings field per service: a service added later needs no change here
    monkeypatch.setenv("WARREN_LOYALTY_POINTS_DB_URL", "postgresql+asyncpg://w:x@db/points")

    assert settings().database_url("loyalty_points") == "postgresql+asyncpg://w:x@db/points"


def connected_vhost(url: str) -> str:
    """The virtual host aiormq (under aio-pika) would open for this URL."""
    return str(Connection(url).vhost)


@pytest.mark.parametrize("vhost", ["/", "warren", "warren-test-3f9a", "team/a", "a/b/c"])
async def test_amqp_url_points_the_connection_at_the_given_vhost(vhost: str) -> None:
    base = settings(broker_url="amqp://warren:pw@rabbitmq:5672/")

    url = base.amqp_url(vhost)

    assert connected_vhost(url) == vhost
    assert settings(broker_url=url).vhost == vhost
    assert url.startswith("amqp://warren:pw@rabbitmq:5672/")


def test_a_slash_in_a_vhost_is_percent_encoded() -> None:
    base = settings(broker_url="amqp://warren:pw@rabbitmq:5672/")

    assert base.amqp_url("/") == "amqp://warren:pw@rabbitmq:5672/%2F"
    assert base.amqp_url("team/a") == "amqp://warren:pw@rabbitmq:5672/team%2Fa"
    assert base.amqp_url() == "amqp://warren:pw@rabbitmq:5672/"


@pytest.mark.parametrize("vhost", ["team#a", "what?"])
async def test_amqp_url_percent_encodes_every_reserved_character(vhost: str) -> None:
    url = settings().amqp_url(vhost)

    assert connected_vhost(url) == vhost


def test_env_example_documents_every_setting() -> None:
    # given the documented example configuration
    documented = set(re.findall(r"\bWARREN_[A-Z0-9_]+", ENV_EXAMPLE.read_text()))

    # then every field of Settings appears in it, so docs cannot drift from code
    missing = sorted(
        f"WARREN_{field.upper()}"
        for field in Settings.model_fields
        if f"WARREN_{field.upper()}" not in documented and field not in ("db_urls", "api_urls")
    )
    missing += [
        f"WARREN_{s.name.upper()}_DB_URL"
        for s in services()
        if f"WARREN_{s.name.upper()}_DB_URL" not in documented
    ]
    assert missing == []


def test_worker_metrics_listen_on_loopback_unless_configured() -> None:
    assert settings().metrics_host == "127.0.0.1"
    assert settings(metrics_host="0.0.0.0").metrics_host == "0.0.0.0"


def test_the_gateway_docs_are_on_by_default_only_outside_production() -> None:
    assert settings().gateway_docs is True
    assert settings(env="test").gateway_docs is True
    assert settings(**SAFE_PRODUCTION).gateway_docs is False
    assert settings(**SAFE_PRODUCTION, gateway_docs="on").gateway_docs is True
    assert settings(gateway_docs="off").gateway_docs is False
