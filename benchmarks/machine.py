"""The machine a run came from: cores, memory, software versions (no host names, no paths)."""

from __future__ import annotations

import os
import platform
import sqlite3
from pathlib import Path


def _meminfo_gib() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024**2:.1f}"
    return "?"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "?"


def describe(broker: dict[str, str], postgres: str | None) -> dict[str, str]:
    """What to quote next to the figures."""
    facts = {
        "cores": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "ram_gib": _meminfo_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        **broker,
    }
    if postgres is not None:
        facts["postgresql"] = postgres
    return facts
