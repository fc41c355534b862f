"""JSON Schemas of every contract version, and of the AMQP properties and headers they travel with.

Pure functions: `warren contracts export` writes one schema file per version into
`contracts/schemas/`; the AsyncAPI document (made by FastStream) embeds the AMQP parts so that a
client in another language can build a valid message from it alone.
"""

from __future__ import annotations

import json
from typing import Any

from contracts.base import Command, Message
from contracts.envelope import CAUSATION_HEADER, CONTENT_TYPE, TRACEPARENT_HEADER
from contracts.registry import Registry

__all__ = [
    "AMQP_HEADERS",
    "AMQP_PROPERTIES",
    "OVERVIEW",
    "description_of",
    "message_schemas",
    "render",
    "schema_filename",
]

JSON = dict[str, Any]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
PERSISTENT = 2


def _text(description: str, **rules: Any) -> JSON:
    return {"type": "string", "minLength": 1, "description": description, **rules}


AMQP_PROPERTIES: JSON = {
    "title": "AMQP properties",
    "description": "The AMQP 0-9-1 basic properties a publisher sets on every Warren message.",
    "type": "object",
    "required": ["type", "message_id", "content_type", "delivery_mode"],
    "properties": {
        "type": _text("The contract and its version, `<name>.v<version>`.", pattern=r"\.v[0-9]+$"),
        "message_id": _text("A fresh UUID per message, kept when it is re-sent: the dedup key."),
        "correlation_id": _text("The business flow; messages it causes carry it on."),
        "timestamp": {"type": "integer", "minimum": 0, "description": "Creation, POSIX seconds."},
        "app_id": _text("The application that published the message."),
        "content_type": {"const": CONTENT_TYPE},
        "delivery_mode": {"const": PERSISTENT, "description": "Persistent."},
    },
}

AMQP_HEADERS: JSON = {
    "title": "AMQP headers",
    "description": "Application headers; Warren's own never start with `x-` (RabbitMQ owns them).",
    "type": "object",
    "properties": {
        CAUSATION_HEADER: _text("The message_id of the message that caused this one, if any."),
        TRACEPARENT_HEADER: _text(
            "W3C Trace Context of the publisher.",
            pattern="^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        ),
    },
}

OVERVIEW = (
    "Warren's message contracts on RabbitMQ (AMQP 0-9-1).\n\n"
    "To send a message, publish its JSON payload (UTF-8) to the exchange of its channel with the "
    "channel's routing key, persistent (`delivery_mode=2`), with `content_type=application/json`, "
    "the AMQP `type` property `<name>.v<version>` given by the message's AMQP binding "
    "(`messageType`) and a fresh `message_id`; `correlation_id`, `timestamp`, `app_id` and the "
    f"headers `{CAUSATION_HEADER}` and `{TRACEPARENT_HEADER}` are optional. Each message lists "
    "them in `x-amqp-properties` and `headers`.\n\n"
    "Send the newest version of a contract; deprecated versions are still accepted. A message of "
    "an unknown name, of a version newer than its consumer knows, or whose payload does not match "
    "its schema is dead-lettered at once, without retries."
)


def schema_filename(model: type[Message]) -> str:
    """The file of one contract version's JSON Schema, e.g. `orders.PlaceOrder.v1.json`."""
    return f"{model.type_name()}.json"


def _docstring(model: type[Message]) -> str:
    # `__doc__` is not inherited: a contract without a docstring gives "".
    return " ".join((model.__doc__ or "").split())


def description_of(model: type[Message]) -> str:
    """What a contract version is: command or event, its AMQP type and its docstring."""
    kind = "Command" if issubclass(model, Command) else "Event"
    identity = f"{kind} {model.NAME}, version {model.VERSION}"
    return f"{identity}: AMQP `type` property `{model.type_name()}`. {_docstring(model)}".strip()


def message_schemas(registry: Registry) -> dict[str, JSON]:
    """One standalone JSON Schema (draft 2020-12) per contract version, keyed by file name."""
    schemas = {}
    for model in registry:
        schema = model.model_json_schema()
        schema.update(title=model.type_name(), description=description_of(model))
        schemas[schema_filename(model)] = {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": f"urn:warren:schema:{model.type_name()}",
            **schema,
        }
    return schemas


def render(document: JSON) -> str:
    """The committed text of a JSON document: indented, keys sorted, a newline at the end."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
