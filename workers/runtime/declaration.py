"""What a service declares about itself, once, in its own package (docs/services.md).

Everything else (the CLI, settings, topology, broker users, deployment files, verify, the
benchmarks and the test harness) is derived from these declarations by `workers.runtime.discovery`.
A declaration imports only contracts: building the process is deferred to `bootstrap`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Literal

from contracts.base import Command, Message
from contracts.topology import Subscription, context_of, work_queue


@dataclass(frozen=True)
class Service:
    """A service: its name, its queue and what it consumes and sends, and where its code is.

    `bootstrap`, `verify` and `settings` are `"module:attribute"` references, imported only by
    the process (or command) that needs them, so that reading every declaration stays cheap.
    """

    name: str
    group: str
    consumes: tuple[type[Message], ...]
    sends: tuple[type[Message], ...] = ()
    bootstrap: str | None = None
    verify: str | None = None
    settings: str | None = None
    kind: Literal["worker", "gateway"] = "worker"
    # Serves an HTTP API beside its consumer (its ServiceSpec's `api`), which the gateway calls
    # synchronously: it gets a port, a Kubernetes Service and `WARREN_<NAME>_API_URLS`.
    http: bool = False
    description: str = ""
    package: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or not self.name.islower():
            raise ValueError(f"a service name is a lower-case identifier, not {self.name!r}")

    @property
    def queue(self) -> str:
        """The service's work queue: `<name>.<group>`."""
        return work_queue(self.name, self.group)

    @property
    def subscription(self) -> Subscription:
        """The work queue and the contracts bound to it."""
        names = tuple(dict.fromkeys(message.NAME for message in self.consumes))
        return Subscription(self.name, self.group, names)

    @property
    def owned_contexts(self) -> tuple[str, ...]:
        """The contract contexts this service publishes events of."""
        events = (m for m in self.sends if not issubclass(m, Command))
        return tuple(sorted({context_of(m.NAME) for m in events}))

    @property
    def command_contexts(self) -> tuple[str, ...]:
        """The contexts whose command exchanges this service sends commands to."""
        commands = (m for m in self.sends if issubclass(m, Command))
        return tuple(sorted({context_of(m.NAME) for m in commands}))

    def load(self, attribute: Literal["bootstrap", "verify", "settings"]) -> Any:
        """The object a `"module:attribute"` reference names (None when not declared)."""
        reference: str | None = getattr(self, attribute)
        return None if reference is None else resolve(reference)


def resolve(reference: str) -> Callable[..., Any]:
    """Import `"package.module:attribute"`."""
    module, _, attribute = reference.partition(":")
    if not attribute:
        raise ValueError(f"{reference!r} is not of the form 'module:attribute'")
    value: Callable[..., Any] = getattr(import_module(module), attribute)
    return value
