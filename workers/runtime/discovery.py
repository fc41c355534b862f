"""Finds every declared service: `workers/<name>/service.py` and `warren.services` entry points.

A service in this repository needs no registration: its package under `workers/` with a
`service.py` that defines `SERVICE` is enough. A service in another distribution (or the
gateway, which lives beside `workers/`) names its declaration in the `warren.services`
entry-point group. Nothing else lists services.
"""

from __future__ import annotations

import pkgutil
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path

from contracts.topology import Subscription, suffix_clashes
from workers.runtime.declaration import Service

ENTRY_POINT_GROUP = "warren.services"
_WORKERS = Path(__file__).resolve().parents[1]
_FRAMEWORK = frozenset({"runtime", "ops"})  # packages of `workers/` that are not services


def _in_this_repository() -> list[Service]:
    found = []
    for module in pkgutil.iter_modules([str(_WORKERS)]):
        if module.name in _FRAMEWORK or not module.ispkg:
            continue
        if (_WORKERS / module.name / "service.py").is_file():
            declared = import_module(f"workers.{module.name}.service").SERVICE
            found.append(_checked(declared, f"workers.{module.name}"))
    return found


def _from_entry_points() -> list[Service]:
    found = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.append(_checked(entry.load(), entry.value.partition(":")[0].rpartition(".")[0]))
    return found


def _checked(declared: object, package: str) -> Service:
    if not isinstance(declared, Service):
        raise TypeError(f"{package}: SERVICE is a {type(declared).__name__}, not a Service")
    object.__setattr__(declared, "package", package)
    return declared


@cache
def services() -> tuple[Service, ...]:
    """Every declared service: the gateway first, then the workers by name."""
    by_name: dict[str, Service] = {}
    for declared in (*_from_entry_points(), *_in_this_repository()):
        if by_name.setdefault(declared.name, declared) is not declared:
            raise ValueError(f"two services are named {declared.name!r}")
    found = sorted(by_name.values(), key=lambda s: (s.kind != "gateway", s.name))
    clashes = suffix_clashes([s.queue for s in found])
    if clashes:
        raise ValueError(f"queue names clash (one ends with the other): {clashes}")
    return tuple(found)


def service(name: str) -> Service:
    """The declaration of one service; a clear error names the known ones."""
    for declared in services():
        if declared.name == name:
            return declared
    known = ", ".join(s.name for s in services())
    raise KeyError(f"unknown service {name!r}; known: {known}")


def workers() -> tuple[Service, ...]:
    """The worker services (every service but the gateway)."""
    return tuple(s for s in services() if s.kind == "worker")


def worker_names() -> tuple[str, ...]:
    """The names of the worker services."""
    return tuple(s.name for s in workers())


def subscriptions() -> tuple[Subscription, ...]:
    """Every service's work queue and the contracts bound to it."""
    return tuple(s.subscription for s in services())
