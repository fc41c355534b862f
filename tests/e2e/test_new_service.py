"""`warren new service` in a fresh clone: only new and regenerated files; the service works."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import aio_pika
import pytest

from tests.support.harness import wait_for
from workers.ops.scaffold import camel

REPO = Path(__file__).resolve().parents[2]
# A name typed nowhere in the tree, so the new service must pass the service-name test too.
NAME = f"svc_{uuid.uuid4().hex[:8]}"
CAMEL = camel(NAME)
NEW_FILES = (
    f"contracts/{NAME}.py",
    "contracts/schemas/",
    f"tests/services/{NAME}/",
    f"workers/{NAME}/",
)
REGENERATED = {
    ".env.example",
    "compose/compose.yaml",
    "compose/kubernetes/keda.yaml",
    "compose/kubernetes/secrets.env.example",
    "compose/kubernetes/workers.yaml",
    "compose/new_env.py",
    "compose/postgres/init.sh",
    "compose/prometheus/prometheus.yml",
    "config/rabbitmq/definitions.json",
    "contracts/schemas/asyncapi.json",
}


def run(clone: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """`python -m ARGS` in the clone: its own code comes first on the path."""
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=clone, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone of this checkout's last commit, with a new service in it."""
    target = tmp_path_factory.mktemp("clone") / "warren"
    subprocess.run(["git", "clone", "-q", str(REPO), str(target)], check=True)
    run(target, "workers.cli", "new", "service", NAME)
    return target


def test_only_new_files_and_regenerated_ones_change(clone: Path) -> None:
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    changed = {line[3:] for line in status if line.startswith(" M")}
    added = {line[3:] for line in status if line.startswith("??")}

    assert changed <= REGENERATED
    assert added and all(path.startswith(NEW_FILES) for path in added)


def test_the_new_service_passes_lint_and_its_own_tests(clone: Path) -> None:
    run(clone, "ruff", "check", "-q", ".")
    run(clone, "ruff", "format", "--check", "-q", ".")
    names_test = "tests/unit/test_service_names.py"
    run(
        clone, "pytest", "-q", "-p", "no:cacheprovider", f"tests/services/{NAME}", "tests/contracts"
    )
    run(clone, "pytest", "-q", "-p", "no:cacheprovider", names_test, "tests/unit/test_generated.py")
    assert NAME in run(clone, "workers.cli", "services")
    run(clone, "workers.cli", "--help")


async def test_the_new_service_consumes_and_handles_a_message_once(
    clone: Path, amqp_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WARREN_METRICS_PORT"}
    env |= {"WARREN_BROKER_URL": amqp_url, "WARREN_VAR_DIR": str(tmp_path)}
    env |= {"WARREN_LOG_JSON": "false", "WARREN_ENV": "test"}
    run(clone, "workers.cli", "topology", "apply", env=env)
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workers.cli", "worker", NAME, cwd=clone, env=env
    )
    try:
        await send_twice(clone, amqp_url)

        def rows() -> list[int]:
            if not (tmp_path / f"{NAME}.db").exists():
                return []
            try:
                with sqlite3.connect(tmp_path / f"{NAME}.db") as db:
                    entries = db.execute(f"SELECT count(*) FROM {NAME}_entry").fetchone()[0]
                    events = db.execute("SELECT count(*) FROM outbox_message").fetchone()[0]
                    claims = db.execute("SELECT count(*) FROM inbox_message").fetchone()[0]
            except sqlite3.OperationalError:  # the worker has created the file, not yet its tables
                return []
            return [entries, events, claims] if claims == 2 else []

        async def handled() -> list[int]:
            return rows()

        assert await wait_for(handled, timeout=60, what="both deliveries handled") == [1, 1, 2]
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.wait(), 30)


async def send_twice(clone: Path, amqp_url: str) -> None:
    """The same command under two message ids, as a client resending it would."""
    body = f'{{"entry_id": "{uuid.uuid4()}", "note": "hello"}}'.encode()
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(f"{NAME}.commands")
        for _ in range(2):
            message = aio_pika.Message(
                body,
                type=f"{NAME}.Record{CAMEL}.v1",
                message_id=str(uuid.uuid4()),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await exchange.publish(message, f"{NAME}.Record{CAMEL}", mandatory=True)
