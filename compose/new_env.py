"""Write `compose/.env` with fresh random secrets for the compose stack (stdlib only).

    python3 compose/new_env.py            # refuses to overwrite an existing file
    python3 compose/new_env.py --force    # new secrets: only for a stack with no data yet

Prints the API key (`Authorization: Bearer <key>`) once; the file keeps only its hash.
Passwords are URL-safe because they go into AMQP and database URLs unescaped.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
from pathlib import Path

ENV_FILE = Path(__file__).with_name(".env")
# >>> generated: new-env-users (warren generate; edit the service declarations, not this block)
SERVICES = (
    "gateway",
    "accounts",
    "carts",
    "inventory",
    "orders",
    "payments",
    "shipping",
)
# <<< generated: new-env-users
RABBITMQ_USERS = (*SERVICES, "topology", "operator", "monitoring")
DATABASES = SERVICES
API_CLIENT = "compose-client"


def secret() -> str:
    """A URL-safe random password (32 bytes of entropy)."""
    return secrets.token_urlsafe(32)


def env_lines(api_key: str) -> list[str]:
    """Every variable compose.yaml requires, with a fresh value each."""
    lines = ["# Secrets of the compose stack, written by compose/new_env.py. Never commit."]
    lines += [f"RABBITMQ_{user.upper()}_PASSWORD={secret()}" for user in RABBITMQ_USERS]
    lines += [f"POSTGRES_PASSWORD={secret()}"]
    lines += [f"POSTGRES_{db.upper()}_PASSWORD={secret()}" for db in DATABASES]
    lines += [f"GRAFANA_ADMIN_PASSWORD={secret()}"]
    api_keys = json.dumps([f"{API_CLIENT}:{hashlib.sha256(api_key.encode()).hexdigest()}"])
    lines += [f"WARREN_API_KEYS='{api_keys}'"]
    return lines


def main(argv: list[str]) -> int:
    """Write the file (mode 0600) unless it exists and --force is not given."""
    if ENV_FILE.exists() and "--force" not in argv:
        print(
            f"{ENV_FILE} exists; keep it (the running stack uses those secrets) or pass "
            "--force on a stack without data volumes (docker compose down -v).",
            file=sys.stderr,
        )
        return 1
    api_key = secrets.token_urlsafe(32)
    ENV_FILE.unlink(missing_ok=True)
    descriptor = os.open(ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as env:
        env.write("\n".join(env_lines(api_key)) + "\n")
    print(f"wrote {ENV_FILE}\nAPI key of {API_CLIENT} (shown once): {api_key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
