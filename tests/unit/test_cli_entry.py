"""The entry point runs a plain `warren worker NAME` itself, lean; the rest goes to Typer."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workers.cli import plain_worker
from workers.runtime.discovery import worker_names


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["worker", "loyalty_points"], ("loyalty_points", True)),
        (["worker", "loyalty_points", "--no-relay"], ("loyalty_points", False)),
        (["worker", "--no-relay", "loyalty_points"], ("loyalty_points", False)),
        (["worker", "--no-relay", "loyalty_points", "--relay"], ("loyalty_points", True)),
        (["worker"], None),
        (["worker", "loyalty_points", "--help"], None),
        (["worker", "--help"], None),
        (["worker", "loyalty_points", "gift_cards"], None),
        (["worker", "--", "loyalty_points"], None),
        (["relay", "loyalty_points"], None),
        ([], None),
    ],
)
def test_only_a_plain_worker_command_skips_typer(
    args: list[str], expected: tuple[str, bool] | None
) -> None:
    assert plain_worker(args) == expected


def test_a_worker_process_loads_neither_typer_nor_the_operator_commands() -> None:
    """What `warren worker NAME` imports before it runs the worker (`run_worker` replaced)."""
    name = worker_names()[0]
    probe = (
        "import sys, workers.cli as cli\n"
        "cli.run_worker = lambda name, relay: print(name, relay)\n"
        f"sys.argv = ['warren', 'worker', {name!r}, '--no-relay']\n"
        "cli.main()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'typer'"
        " or m.startswith(('workers.ops', 'workers.commands', 'benchmarks')))\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == [f"{name} False", "[]"]


def test_a_mistyped_worker_still_gets_typers_answer() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "workers.cli", "worker", "nosuch"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "unknown worker 'nosuch'" in done.stderr
