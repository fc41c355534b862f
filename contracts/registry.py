"""Encode and decode messages by (name, version), upcasting old versions to the newest."""

from __future__ import annotations

import json
import pkgutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from pydantic import ValidationError

from contracts.base import Command, Event, Message
from contracts.envelope import CAUSATION_HEADER, TRACEPARENT_HEADER, Envelope, WireMessage
from contracts.errors import (
    MalformedMessage,
    SchemaViolation,
    UnknownMessageType,
    UnsupportedVersion,
)

Upcaster = Callable[[Any], Message]
CONTRACTS_ENTRY_POINT_GROUP = "warren.contracts"  # contract modules of other distributions


def parse_type(type_name: str | None) -> tuple[str, int]:
    """Split `orders.PlaceOrder.v2` into `("orders.PlaceOrder", 2)`."""
    name, sep, version = (type_name or "").rpartition(".v")
    if not sep or not name or not version.isdigit():
        raise MalformedMessage(
            f"the AMQP 'type' property {type_name!r} is not of the form '<name>.v<version>'"
        )
    return name, int(version)


class Registry:
    """Every contract version a process knows, and how to bring old versions up to date."""

    def __init__(self, models: Iterable[type[Message]] = ()) -> None:
        self._models: dict[tuple[str, int], type[Message]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        for model in models:
            self.register(model)

    def register(self, model: type[Message]) -> None:
        """Know one version of one contract."""
        self._models[(model.NAME, model.VERSION)] = model

    def extended(self, models: Iterable[type[Message]]) -> Registry:
        """A new registry that knows everything this one knows, and `models` too."""
        wider = Registry([*self._models.values(), *models])
        wider._upcasters.update(self._upcasters)
        return wider

    def upcaster(self, model: type[Message], fn: Upcaster) -> None:
        """Declare how `model` becomes the next version of its contract."""
        self._upcasters[(model.NAME, model.VERSION)] = fn

    def __iter__(self) -> Iterator[type[Message]]:
        return iter(sorted(self._models.values(), key=lambda m: (m.NAME, m.VERSION)))

    def newest(self, name: str) -> type[Message]:
        """The newest known version of the contract `name`."""
        versions = [v for (n, v) in self._models if n == name]
        if not versions:
            raise UnknownMessageType(name)
        return self._models[(name, max(versions))]

    def encode(self, envelope: Envelope[Any]) -> WireMessage:
        """The body and AMQP properties for an envelope."""
        msg = envelope.message
        if self._models.get((msg.NAME, msg.VERSION)) is not type(msg):
            raise UnknownMessageType(f"{msg.NAME} v{msg.VERSION}")
        headers = dict(envelope.headers)
        if envelope.causation_id:
            headers[CAUSATION_HEADER] = envelope.causation_id
        if envelope.traceparent:
            headers[TRACEPARENT_HEADER] = envelope.traceparent
        return WireMessage(
            body=msg.model_dump_json().encode(),
            type=msg.type_name(),
            message_id=envelope.message_id,
            correlation_id=envelope.correlation_id,
            timestamp=envelope.timestamp,
            headers=headers,
        )

    def decode_body(self, type_name: str | None, body: bytes) -> Message:
        """The newest version of the message in `body`, or a PoisonMessage saying why not."""
        name, version = parse_type(type_name)
        newest = self.newest(name)
        if version > newest.VERSION:
            raise UnsupportedVersion(name, version, newest.VERSION)
        model = self._models.get((name, version))
        if model is None:
            raise UnsupportedVersion(name, version, newest.VERSION)
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedMessage(f"the body of a {type_name} is not valid JSON: {exc}") from exc
        try:
            message = model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "<body>"
            raise SchemaViolation(model.type_name(), field, first["msg"], exc.errors()) from exc
        while message.VERSION < newest.VERSION:
            message = self._upcasters[(name, message.VERSION)](message)
        return message

    def decode(
        self,
        body: bytes,
        *,
        type_name: str | None,
        message_id: str | None,
        correlation_id: str | None = None,
        timestamp: datetime | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> Envelope[Any]:
        """An envelope from a body and its AMQP properties."""
        if not message_id:
            raise MalformedMessage("the AMQP 'message_id' property is missing")
        headers = dict(headers or {})
        causation = headers.get(CAUSATION_HEADER)
        traceparent = headers.get(TRACEPARENT_HEADER)
        return Envelope(
            self.decode_body(type_name, body),
            message_id=message_id,
            correlation_id=correlation_id,
            causation_id=_text(causation),
            timestamp=timestamp or datetime.now(UTC),
            traceparent=_text(traceparent),
            headers=headers,
        )


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return None if value is None else str(value)


def _contract_modules() -> list[ModuleType]:
    """Every module of this package, and those named in the `warren.contracts` entry points."""
    found = [
        import_module(f"{__package__}.{info.name}")
        for info in pkgutil.iter_modules(import_module(__package__ or "contracts").__path__)
    ]
    return found + [entry.load() for entry in entry_points(group=CONTRACTS_ENTRY_POINT_GROUP)]


def _declared_in(module: ModuleType) -> list[type[Message]]:
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Command | Event)
        and value.__module__ == module.__name__
        and "NAME" in dir(value)
    ]


@cache
def all_messages() -> tuple[type[Message], ...]:
    """Every contract version defined in a contract module, found rather than listed."""
    models = {m for module in _contract_modules() for m in _declared_in(module)}
    return tuple(sorted(models, key=lambda m: (m.NAME, m.VERSION)))


@cache
def default_registry() -> Registry:
    """The registry of every contract, with each module's `UPCASTERS` (old model -> function)."""
    registry = Registry(all_messages())
    for module in _contract_modules():
        for model, upcaster in getattr(module, "UPCASTERS", {}).items():
            registry.upcaster(model, upcaster)
    return registry
