"""Everything a run creates (processes, vhosts, databases, files), released in one place."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Protocol

from benchmarks.broker import create_vhost, delete_vhosts
from benchmarks.databases import Backend, Databases
from benchmarks.processes import Children
from config.settings import Settings


class Placed(Protocol):
    """Where a run writes and which databases it makes (`warren bench` and its subcommands)."""

    @property
    def out_dir(self) -> Path: ...
    @property
    def db(self) -> Backend: ...


class Resources:
    """Hands out fresh vhosts and databases; `release` (sync, outside any loop) undoes it all."""

    def __init__(self, settings: Settings, plan: Placed) -> None:
        self.settings = settings
        self.run_id = secrets.token_hex(3)
        self.run_dir = plan.out_dir / f"run-{self.run_id}"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.children = Children(plan.out_dir / "logs")
        self.databases = Databases(plan.db, self.run_dir / "db", self.run_id)
        self._vhosts: list[str] = []

    async def vhost(self, label: str) -> str:
        """The AMQP URL of a new virtual host for `label`, deleted by `release`."""
        name = f"warren-bench-{self.run_id}-{label}"
        self._vhosts.append(name)  # noted first: a half-made vhost is deleted too
        await create_vhost(self.settings, name)
        return self.settings.amqp_url(name)

    def release(self) -> list[str]:
        """Stop every process, delete the vhosts, drop the databases; what could not be undone."""
        self.children.stop_all()
        left = delete_vhosts(self.settings, self._vhosts)
        left += self.databases.drop_all()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self._vhosts.clear()
        return left
