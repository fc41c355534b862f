"""Why a message could not be decoded. Every one of them is poison: no retry will help."""

from __future__ import annotations

from typing import Any


class PoisonMessage(Exception):
    """A message that can never be handled as it is; it goes to the dead-letter queue at once."""


class MalformedMessage(PoisonMessage):
    """The body is not JSON, or the `type` property is missing or unreadable."""


class UnknownMessageType(PoisonMessage):
    """No contract of this name is known to this consumer."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown message type {name!r}: no contract of that name is registered")
        self.name = name


class UnsupportedVersion(PoisonMessage):
    """The version is newer than any this consumer knows (deploy a newer consumer first)."""

    def __init__(self, name: str, version: int, newest: int) -> None:
        super().__init__(
            f"{name} v{version} is newer than the newest version this consumer knows (v{newest})"
        )
        self.name, self.version, self.newest = name, version, newest


class SchemaViolation(PoisonMessage):
    """The body does not satisfy the contract; `field` names the first offending field."""

    def __init__(self, type_name: str, field: str, problem: str, errors: list[Any]) -> None:
        super().__init__(f"{type_name}: field {field!r}: {problem}")
        self.type_name, self.field, self.problem, self.errors = type_name, field, problem, errors
