"""The `warren` command's entry point (`warren`, `python -m workers.cli`).

`warren worker NAME [--relay | --no-relay]`, what every worker container and `warren up` run,
goes straight to the worker: building the whole command line (`workers/commands.py`) would load
Typer, every operator command and their imports into each worker process, which needs none of
them (docs/performance.md, "Worker memory"). Anything else, a mistyped name or `--help`
included, goes through the Typer app, as before.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

RELAY_FLAGS = {"--relay": True, "--no-relay": False}


def run_worker(name: str, relay: bool) -> None:
    """Run one declared worker service in this process until SIGTERM."""
    from config.settings import get_settings
    from workers.runtime.discovery import service
    from workers.runtime.service import main as run

    declared = service(name)
    settings = get_settings()
    run(declared.load("bootstrap")(settings), settings, with_relay=relay)


def plain_worker(args: Sequence[str]) -> tuple[str, bool] | None:
    """`(name, relay)` when `args` are `worker NAME` with at most the relay flags, else None."""
    if not args or args[0] != "worker":
        return None
    names = [a for a in args[1:] if a not in RELAY_FLAGS]
    if len(names) != 1 or names[0].startswith("-"):
        return None
    flags = [RELAY_FLAGS[a] for a in args[1:] if a in RELAY_FLAGS]
    return names[0], flags[-1] if flags else True


def main() -> None:
    """Run the command line in `sys.argv`."""
    plain = plain_worker(sys.argv[1:])
    if plain is not None:
        from workers.runtime.discovery import worker_names

        if plain[0] in worker_names():
            run_worker(*plain)
            return
    from workers.commands import app

    app()


if __name__ == "__main__":
    main()
