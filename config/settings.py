"""Typed settings for every Warren process, read once from `WARREN_*` variables and `.env`."""

from __future__ import annotations

import hashlib
import os
import re
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_API_KEY = "warren-dev-key"
ENV_PREFIX = "WARREN_"
DB_URL_SUFFIX = "_db_url"
API_URLS_SUFFIX = "_api_urls"
DEFAULT_PASSWORDS = frozenset({"guest", "postgres", "password", "admin", "changeme", "secret", ""})
# Several broker URLs are separated by commas; a comma inside one URL is never followed by a scheme.
BROKER_URL_SEPARATOR = re.compile(r"\s*,\s*(?=amqps?://)")


def hash_api_key(key: str) -> str:
    """The stored form of an API key: its SHA-256 hex digest."""
    return hashlib.sha256(key.encode()).hexdigest()


DEV_API_KEY_ENTRY = f"dev-client:{hash_api_key(DEV_API_KEY)}"


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Everything a process needs to know; unsafe values are refused outside dev and test."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = Environment.DEV
    var_dir: Path = Path("var")

    # One URL, or the nodes of a cluster as comma-separated URLs (docs/operations.md, "A cluster")
    broker_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    # Replicas of each quorum queue; None: one per broker URL given (the broker's default for one)
    quorum_replicas: Annotated[int, Field(ge=1, le=99)] | None = None
    broker_reconnect_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    management_url: str = "http://127.0.0.1:15672"
    management_user: str = "guest"
    management_password: SecretStr = SecretStr("guest")

    # Each service's own database, from `WARREN_<SERVICE>_DB_URL` (see _collect_database_urls).
    db_urls: dict[str, str] = Field(default_factory=dict)

    queue_type: Literal["quorum", "classic"] = "quorum"
    declare_topology: Literal["all", "own"] = "all"
    prefetch: Annotated[int, Field(ge=1, le=2000)] = 32
    handler_batch_size: Annotated[int, Field(ge=1, le=2000)] = 16
    delivery_limit: Annotated[int, Field(ge=1, le=1000)] = 10
    unrouted_max_length: Annotated[int, Field(ge=1)] = 100_000
    immediate_retries: Annotated[int, Field(ge=0, le=10)] = 2
    immediate_retry_base_s: Annotated[float, Field(gt=0, le=5)] = 0.05
    delayed_retries: Annotated[int, Field(ge=0, le=50)] = 5
    retry_base_s: Annotated[float, Field(gt=0)] = 1.0
    retry_max_s: Annotated[float, Field(gt=0)] = 300.0
    retry_jitter: Annotated[float, Field(ge=0, le=1)] = 0.5
    delay_unit_ms: Annotated[int, Field(ge=10, le=60_000)] = 100
    delay_levels: Annotated[int, Field(ge=4, le=40)] = 24
    drain_timeout_s: Annotated[float, Field(gt=0)] = 20.0

    catalog_path: Path = Path(__file__).with_name("catalog.json")

    relay_batch_size: Annotated[int, Field(ge=1, le=5000)] = 200
    relay_poll_interval_s: Annotated[float, Field(gt=0)] = 0.5
    relay_publish_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    relay_lease_s: Annotated[float, Field(gt=0)] = 15.0
    outbox_retention_hours: Annotated[float, Field(gt=0)] = 72.0
    inbox_retention_hours: Annotated[float, Field(gt=0)] = 168.0

    api_keys: list[str] = Field(default_factory=list)
    gateway_host: str = "127.0.0.1"
    gateway_port: Annotated[int, Field(ge=1, le=65535)] = 8000
    rate_limit_per_s: Annotated[float, Field(gt=0)] = 50.0
    rate_limit_burst: Annotated[int, Field(ge=1)] = 100
    idempotency_retention_hours: Annotated[float, Field(ge=24)] = 48.0
    max_long_poll_s: Annotated[float, Field(gt=0, le=30)] = 30.0
    # None: on outside production, off in production (see _default_gateway_docs)
    gateway_docs: bool | None = None
    # None: /metrics on the public port; a port: only on its own listener at metrics_host
    gateway_metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = None

    # A service with an HTTP API (`Service.http`) serves it here; the gateway finds its
    # instances in `WARREN_<SERVICE>_API_URLS` (comma-separated base URLs: configuration
    # locally, DNS names in compose and Kubernetes), see _collect_api_urls.
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    api_urls: dict[str, list[str]] = Field(default_factory=dict)
    api_timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    api_breaker_threshold: Annotated[int, Field(ge=1)] = 3
    api_breaker_reset_s: Annotated[float, Field(gt=0)] = 5.0

    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = None

    otlp_endpoint: str | None = None

    log_level: str = "INFO"
    log_json: bool = True

    @model_validator(mode="before")
    @classmethod
    def _collect_database_urls(cls, data: Any) -> Any:
        # Any service's URL, with no field per service: `<service>_db_url` given to the
        # constructor or in `.env`, or `WARREN_<SERVICE>_DB_URL` in the environment.
        if not isinstance(data, dict):
            return data
        found = {k.lower(): str(v) for k, v in data.items() if k.lower().endswith(DB_URL_SUFFIX)}
        found |= {
            k[len(ENV_PREFIX) :].lower(): v
            for k, v in os.environ.items()
            if k.upper().startswith(ENV_PREFIX) and k.upper().endswith(DB_URL_SUFFIX.upper())
        }
        urls = {k.removesuffix(DB_URL_SUFFIX): v for k, v in found.items() if v}
        urls.pop("", None)
        return {k: v for k, v in data.items() if not k.lower().endswith(DB_URL_SUFFIX)} | {
            "db_urls": {**urls, **dict(data.get("db_urls") or {})}
        }

    @model_validator(mode="before")
    @classmethod
    def _collect_api_urls(cls, data: Any) -> Any:
        # `<service>_api_urls` given to the constructor, or `WARREN_<SERVICE>_API_URLS`
        if not isinstance(data, dict):
            return data
        found = {k.lower(): v for k, v in data.items() if k.lower().endswith(API_URLS_SUFFIX)}
        found |= {
            k[len(ENV_PREFIX) :].lower(): v
            for k, v in os.environ.items()
            if k.upper().startswith(ENV_PREFIX) and k.upper().endswith(API_URLS_SUFFIX.upper())
        }
        urls = {
            k.removesuffix(API_URLS_SUFFIX): [u.strip().rstrip("/") for u in str(v).split(",")]
            if isinstance(v, str)
            else list(v)
            for k, v in found.items()
            if v
        }
        urls = {k: [u for u in v if u] for k, v in urls.items() if k}
        rest = {k: v for k, v in data.items() if not k.lower().endswith(API_URLS_SUFFIX)}
        return rest | {"api_urls": {**urls, **dict(data.get("api_urls") or {})}}

    @model_validator(mode="before")
    @classmethod
    def _default_api_keys(cls, data: Any) -> Any:
        # the documented dev key outside production; in production only keys set on purpose
        if isinstance(data, dict) and "api_keys" not in data:
            production = str(data.get("env", "dev")).lower() == Environment.PRODUCTION.value
            data["api_keys"] = [] if production else [DEV_API_KEY_ENTRY]
        return data

    @model_validator(mode="after")
    def _default_gateway_docs(self) -> Settings:
        # the API docs are a dev convenience; production serves them only when asked to
        if self.gateway_docs is None:
            self.gateway_docs = self.env is not Environment.PRODUCTION
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production_values(self) -> Settings:
        if self.env is not Environment.PRODUCTION:
            return self
        problems = []
        for url in self.amqp_urls():
            broker_password = urlsplit(url).password
            if broker_password is None or broker_password in DEFAULT_PASSWORDS:
                problems.append("WARREN_BROKER_URL has no password or a default one")
                break
        if self.management_password.get_secret_value() in DEFAULT_PASSWORDS:
            problems.append("WARREN_MANAGEMENT_PASSWORD is a default password")
        if DEV_API_KEY_ENTRY.split(":", 1)[1] in {k.partition(":")[2] for k in self.api_keys}:
            problems.append("WARREN_API_KEYS still holds the documented dev key")
        for service, url in sorted(self.db_urls.items()):
            password = urlsplit(url).password
            if password is not None and password in DEFAULT_PASSWORDS:
                problems.append(f"WARREN_{service.upper()}_DB_URL uses a default password")
        if problems:
            raise ValueError(
                "refusing to start with WARREN_ENV=production: "
                + "; ".join(problems)
                + ". Set real secrets (see .env.example)."
            )
        return self

    def database_url(self, service: str) -> str:
        """The database of one service: its own URL, or a SQLite file under `var_dir` (inline)."""
        url = self.db_urls.get(service)
        return url or f"sqlite+inline:///{self.var_dir / f'{service}.db'}"

    def amqp_urls(self, vhost: str | None = None) -> list[str]:
        """The URL of every broker node given, optionally pointed at another virtual host."""
        urls = BROKER_URL_SEPARATOR.split(self.broker_url.get_secret_value().strip())
        if vhost is None:
            return urls
        path = "/" + quote(vhost, safe="")
        return [urlsplit(url)._replace(path=path).geturl() for url in urls]

    def amqp_url(self, vhost: str | None = None) -> str:
        """The broker URL setting (one URL or several), optionally pointed at another vhost."""
        return ",".join(self.amqp_urls(vhost))

    def quorum_group_size(self) -> int | None:
        """How many replicas a new quorum queue asks for (None: the broker decides)."""
        if self.quorum_replicas is not None:
            return self.quorum_replicas
        nodes = len(self.amqp_urls())
        return nodes if nodes > 1 else None

    @property
    def vhost(self) -> str:
        """The virtual host named by the (first) broker URL (`/` when none is)."""
        path = urlsplit(self.amqp_urls()[0]).path.lstrip("/")
        return unquote(path) or "/"


@cache
def get_settings() -> Settings:
    """The settings of this process, built once."""
    return Settings()
