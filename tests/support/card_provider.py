"""The card provider service as a child process, for tests that talk to it over HTTP."""

from __future__ import annotations

from tests.support.harness import Process, free_port
from workers.ops.readiness import http_probe


async def start_provider(db_url: str, **behaviour: str) -> tuple[Process, str]:
    """Start the provider on a free port with its ledger at `db_url`; it and its base URL.

    `behaviour` are `ProviderSettings` fields, e.g. `lose_answer_rate="0.2"`.
    """
    port = free_port()
    env = {"WARREN_PROVIDER_PORT": str(port), "WARREN_PROVIDER_DB_URL": db_url}
    env |= {f"WARREN_PROVIDER_{name.upper()}": value for name, value in behaviour.items()}
    url = f"http://127.0.0.1:{port}"
    process = Process("workers.provider", env, probe=http_probe(f"{url}/healthz"))
    await process.ready(60)
    return process, url
