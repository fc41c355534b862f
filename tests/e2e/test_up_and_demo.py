"""`warren up --demo N --exit-after-demo`: everything on one machine, the demo, a clean exit."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.harness import REPO, free_port
from workers.runtime.discovery import worker_names

WORKER_COUNT = len(worker_names())


def free_port_run(length: int) -> int:
    """A base port B such that B+1 .. B+length are all free right now."""
    for _ in range(50):
        base = free_port()
        try:
            for port in range(base + 1, base + length + 1):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError(f"no run of {length} free ports found")


def processes_with(marker: str) -> list[str]:
    """The command lines of live processes whose environment holds `marker`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # gone already, or not ours
            continue
    return found


def up(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`warren up ARGS` to its end, stdout and stderr together."""
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "up", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=170,
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_up_runs_everything_and_the_demo_meets_every_expectation(
    e2e_amqp_url: str, tmp_path: Path
) -> None:
    # given a fresh vhost, var directory, gateway port and metrics ports, and services that log
    # only warnings (readiness must come from the broker and /readyz, not from a log line)
    var = tmp_path / "var"
    env = os.environ | {
        "WARREN_ENV": "test",
        "WARREN_LOG_LEVEL": "WARNING",
        "WARREN_BROKER_URL": e2e_amqp_url,
        "WARREN_VAR_DIR": str(var),
        "WARREN_GATEWAY_PORT": str(free_port()),
        "WARREN_PROVIDER_PORT": str(free_port()),
        "COLUMNS": "200",
    }
    base = str(free_port_run(WORKER_COUNT))

    # when `warren up` runs the demo and exits
    done = await asyncio.to_thread(
        up, env, "--demo", "12", "--exit-after-demo", "--metrics-port-base", base
    )

    # then every outcome matched, the table shows all three, and no child is left behind
    output = done.stdout
    assert done.returncode == 0, output[-6000:]
    assert "all 12 orders reached their expected outcome" in output, output[-6000:]
    for status in ("CONFIRMED", "REJECTED", "CANCELLED"):
        assert re.search(rf"│ +{status} +│", output), f"no {status} row:\n{output[-6000:]}"
    # the gateway, the card provider and the workers
    assert len(re.findall(r"^started \w+ \(pid \d+\)$", output, re.M)) == 2 + WORKER_COUNT
    with closing(sqlite3.connect(var / "provider.db")) as ledger:  # paid through the provider
        assert ledger.execute("SELECT count(*) FROM provider_ledger").fetchone()[0] > 0
    assert processes_with(f"WARREN_VAR_DIR={var}\0") == []
    assert "consuming" not in output  # nothing at INFO reached the console
