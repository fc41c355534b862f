"""Fill the password hashes of `config/rabbitmq/definitions.json` from the environment.

The committed definitions list every user with an empty `password_hash` (password login
disabled). The compose stack runs this script (stdlib only) before the broker starts:
`RABBITMQ_<USER>_PASSWORD` becomes that user's salted SHA-256 hash, the format RabbitMQ
itself stores, and the broker imports the result at every boot. Usage:

    python render_definitions.py IN.json OUT.json
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
MIN_LENGTH = 12
REFUSED = frozenset({"guest", "password", "admin", "changeme", "secret", "rabbitmq"})
# The passwords go into AMQP and HTTP URLs unescaped, so only unreserved URL characters.
URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's stored form: base64(salt + sha256(salt + utf8(password))), 4-byte salt."""
    salt = secrets.token_bytes(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def password_variable(user: str) -> str:
    """The environment variable holding a user's password: `RABBITMQ_ORDERS_PASSWORD`."""
    return f"RABBITMQ_{user.upper()}_PASSWORD"


def render(definitions: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The definitions with every user's hash set; refuses missing or weak passwords."""
    problems, users = [], []
    for user in definitions["users"]:
        variable = password_variable(user["name"])
        password = env.get(variable, "")
        if len(password) < MIN_LENGTH or password.lower() in REFUSED:
            problems.append(f"{variable} is unset, shorter than {MIN_LENGTH} or a default")
        elif not URL_SAFE.fullmatch(password):
            problems.append(f"{variable} may hold only letters, digits and - _ . ~")
        users.append(
            user
            | {"password_hash": password_hash(password), "hashing_algorithm": HASHING_ALGORITHM}
        )
    if problems:
        raise SystemExit("refusing to render RabbitMQ definitions: " + "; ".join(problems))
    return dict(definitions) | {"users": users}


def main(argv: list[str]) -> None:
    """Read IN, write OUT (world-readable: only hashes, read by the broker's own user)."""
    source, target = Path(argv[1]), Path(argv[2])
    rendered = render(json.loads(source.read_text()), os.environ)
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(rendered, indent=2) + "\n")
    partial.chmod(0o644)
    partial.replace(target)
    print(f"rendered {len(rendered['users'])} users into {target}")


if __name__ == "__main__":
    main(sys.argv)
