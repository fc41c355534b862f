"""JSON Schemas and the AsyncAPI 3.0 document of every contract version.

Pure functions: `warren contracts export` writes what they return into `contracts/schemas/`,
and a test fails when the committed files differ from it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from contracts.base import Command, Message
from contracts.envelope import CAUSATION_HEADER, CONTENT_TYPE, TRACEPARENT_HEADER
from contracts.registry import Registry
from contracts.topology import Subscription, exchange_for, routing_key_for

__all__ = [
    "ASYNCAPI_FILE",
    "asyncapi_document",
    "expected_files",
    "message_schemas",
    "render",
    "schema_filename",
]

JSON = dict[str, Any]
Versions = list[type[Message]]

ASYNCAPI_FILE = "asyncapi.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
AMQP_BINDING_VERSION = "0.3.0"
PERSISTENT = 2
SCHEMAS = "#/components/schemas"
MESSAGES = "#/components/messages"
HEADERS_SCHEMA = "warren.AmqpHeaders"
PROPERTIES_SCHEMA = "warren.AmqpProperties"
EXCHANGE: JSON = {"type": "topic", "durable": True, "autoDelete": False}
QUEUE: JSON = {"durable": True, "exclusive": False, "autoDelete": False}
SEND: JSON = {"deliveryMode": PERSISTENT, "timestamp": True}
RECEIVE: JSON = {"ack": True}


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

SERVER: JSON = {
    "host": "{host}",
    "protocol": "amqp",
    "protocolVersion": "0-9-1",
    "description": "The RabbitMQ broker of the environment.",
    "variables": {"host": {"default": "localhost:5672"}},
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


def _description(model: type[Message]) -> str:
    kind = "Command" if issubclass(model, Command) else "Event"
    identity = f"{kind} {model.NAME}, version {model.VERSION}"
    return f"{identity}: AMQP `type` property `{model.type_name()}`. {_docstring(model)}".strip()


def _schema(model: type[Message], ref_template: str = "#/$defs/{model}") -> JSON:
    """The JSON Schema of one contract version's payload, its `$defs` included."""
    schema = model.model_json_schema(ref_template=ref_template)
    schema.update(title=model.type_name(), description=_description(model))
    return schema


def message_schemas(registry: Registry) -> dict[str, JSON]:
    """One standalone JSON Schema (draft 2020-12) per contract version, keyed by file name."""
    return {
        schema_filename(model): {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": f"urn:warren:schema:{model.type_name()}",
            **_schema(model),
        }
        for model in registry
    }


def _payload_schema(model: type[Message]) -> JSON:
    """The payload schema embedded in the document, its `$ref`s pointing at its own `$defs`."""
    return _schema(model, f"{SCHEMAS}/{model.type_name()}/$defs/{{model}}")


def _by_name(registry: Registry) -> dict[str, Versions]:
    versions: dict[str, Versions] = defaultdict(list)
    for model in registry:  # the registry iterates by (name, version)
        versions[model.NAME].append(model)
    return dict(versions)


def _amqp(binding: JSON) -> JSON:
    return {"amqp": {**binding, "bindingVersion": AMQP_BINDING_VERSION}}


def _message(model: type[Message], newest: type[Message]) -> JSON:
    """The message object of one contract version: payload, headers and AMQP properties."""
    type_name = model.type_name()
    own_type = {"properties": {"type": {"const": type_name}}}
    return {
        "name": type_name,
        "title": f"{model.NAME} v{model.VERSION}",
        "summary": _docstring(model) or _description(model),
        "description": _description(model),
        "contentType": CONTENT_TYPE,
        "headers": {"$ref": f"{SCHEMAS}/{HEADERS_SCHEMA}"},
        "payload": {"$ref": f"{SCHEMAS}/{type_name}"},
        "bindings": _amqp({"messageType": type_name}),
        "x-amqp-properties": {"allOf": [{"$ref": f"{SCHEMAS}/{PROPERTIES_SCHEMA}"}, own_type]},
        **({} if model is newest else {"deprecated": True}),
    }


def _channel(address: str, description: str, versions: Versions, binding: JSON) -> JSON:
    """A channel carrying every listed contract version."""
    return {
        "address": address,
        "description": description,
        "messages": {m.type_name(): {"$ref": f"{MESSAGES}/{m.type_name()}"} for m in versions},
        "bindings": _amqp(binding),
    }


def _publish_channel(versions: Versions) -> JSON:
    """Where every version of one contract is published: its exchange and routing key."""
    exchange, key = exchange_for(versions[-1]), routing_key_for(versions[-1])
    description = f"Publish to the topic exchange `{exchange}` with routing key `{key}`."
    binding = {"is": "routingKey", "exchange": {"name": exchange, **EXCHANGE}}
    return _channel(key, description, versions, binding)


def _queue_channel(sub: Subscription, versions: Versions) -> JSON:
    """A work queue and every version of the contracts bound to it."""
    keys = dict.fromkeys(f"`{exchange_for(m)}` by `{routing_key_for(m)}`" for m in versions)
    description = f"The work queue of the {sub.service} service, bound to {', '.join(keys)}."
    binding = {"is": "queue", "queue": {"name": sub.queue, **QUEUE}}
    return _channel(sub.queue, description, versions, binding)


def _operation(action: str, channel: str, title: str, versions: Versions, binding: JSON) -> JSON:
    """Sending to or receiving from one channel, with the message versions involved."""
    return {
        "action": action,
        "title": title,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{m.type_name()}"} for m in versions],
        "bindings": _amqp(binding),
    }


def _channels_and_operations(
    registry: Registry, subscriptions: Iterable[Subscription]
) -> tuple[JSON, JSON]:
    """A publish channel and send operation per contract, a queue and receive per consumer."""
    channels: JSON = {}
    operations: JSON = {}
    by_name = _by_name(registry)
    for name, versions in by_name.items():
        channel, title = f"routingKey.{name}", f"Send {versions[-1].type_name()}"
        channels[channel] = _publish_channel(versions)
        operations[f"send.{name}"] = _operation("send", channel, title, versions, SEND)
    for sub in subscriptions:
        bound = [m for name in sub.messages for m in by_name.get(name, [])]
        if bound:
            channel, title = f"queue.{sub.queue}", f"{sub.service} consumes {sub.queue}"
            channels[channel] = _queue_channel(sub, bound)
            operations[f"receive.{sub.queue}"] = _operation(
                "receive", channel, title, bound, RECEIVE
            )
    return channels, operations


def asyncapi_document(registry: Registry, subscriptions: Iterable[Subscription]) -> JSON:
    """An AsyncAPI 3.0.0 document of every channel, operation and message version."""
    channels, operations = _channels_and_operations(registry, subscriptions)
    newest = {name: versions[-1] for name, versions in _by_name(registry).items()}
    schemas = {m.type_name(): _payload_schema(m) for m in registry}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Warren", "version": "1.0.0", "description": OVERVIEW},
        "defaultContentType": CONTENT_TYPE,
        "servers": {"rabbitmq": SERVER},
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {
                HEADERS_SCHEMA: AMQP_HEADERS,
                PROPERTIES_SCHEMA: AMQP_PROPERTIES,
                **schemas,
            },
            "messages": {m.type_name(): _message(m, newest[m.NAME]) for m in registry},
        },
    }


def render(document: JSON) -> str:
    """The committed text of a JSON document: indented, keys sorted, a newline at the end."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def expected_files(registry: Registry, subscriptions: Iterable[Subscription]) -> dict[str, str]:
    """Every file `contracts/schemas/` must hold, by name, with its text."""
    files = {name: render(schema) for name, schema in message_schemas(registry).items()}
    files[ASYNCAPI_FILE] = render(asyncapi_document(registry, subscriptions))
    return files
