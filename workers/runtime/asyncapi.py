"""The AsyncAPI 3.0 document, made by FastStream from the services' subscribers and publishers.

The subscribers are the ones the workers run (`edge.subscribe`); the publishers exist only for
the document (the relay publishes): one per contract version, on its exchange with its name as
routing key. What FastStream cannot know is added afterwards, so that a client in another
language can produce a valid message from the document alone: each message's AMQP `type`, its
headers and properties, its payload on the receiving side, and which versions are deprecated.
"""

from __future__ import annotations

from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from faststream.rabbit import RabbitBroker, RabbitRouter
from faststream.specification import AsyncAPI

from contracts.base import Message
from contracts.envelope import CONTENT_TYPE
from contracts.registry import Registry
from contracts.topology import routing_key_for
from contracts.wire_schemas import AMQP_HEADERS, AMQP_PROPERTIES, OVERVIEW, description_of
from workers.runtime.discovery import subscriptions
from workers.runtime.edge import bound_contracts, exchange_of, subscribe

__all__ = ["asyncapi_document", "document_broker"]

JSON = dict[str, Any]
SCHEMAS = "#/components/schemas"
HEADERS_SCHEMA = "warren.AmqpHeaders"
PROPERTIES_SCHEMA = "warren.AmqpProperties"
SERVER_URL = "amqp://localhost:5672/"
EMPTY_PAYLOAD = "EmptyPayload"  # what FastStream gives a handler with no body parameter


def send_title(model: type[Message]) -> str:
    """The publisher (and its channel and operation) of one contract version."""
    return f"send:{model.type_name()}"


async def _never(_: AbstractIncomingMessage) -> None:
    """The document's subscribers are never started."""


def document_broker(registry: Registry) -> RabbitBroker:
    """A broker that is never started: every service's subscribers and a publisher per contract."""
    router = RabbitRouter()
    for subscription in subscriptions():
        subscribe(router, subscription, _never, prefetch=1)
    for model in registry:
        router.publisher(
            exchange=exchange_of(model),
            routing_key=routing_key_for(model),
            schema=model,
            title=send_title(model),
            description=description_of(model),
            persist=True,
            message_type=model.type_name(),
            content_type=CONTENT_TYPE,
        )
    broker = RabbitBroker(SERVER_URL, description="The RabbitMQ broker of the environment.")
    broker.include_router(router)
    return broker


def _wire(message: JSON, model: type[Message], deprecated: bool) -> None:
    """Add what a producer must set besides the payload: AMQP type, headers, properties."""
    type_name = model.type_name()
    message.update(
        name=type_name,
        summary=description_of(model),
        contentType=CONTENT_TYPE,
        headers={"$ref": f"{SCHEMAS}/{HEADERS_SCHEMA}"},
        bindings={"amqp": {"messageType": type_name, "bindingVersion": "0.3.0"}},
    )
    message["x-amqp-properties"] = {
        "allOf": [
            {"$ref": f"{SCHEMAS}/{PROPERTIES_SCHEMA}"},
            {"properties": {"type": {"const": type_name}}},
        ]
    }
    if deprecated:
        message["deprecated"] = True


def _check_schema_names(registry: Registry) -> None:
    """FastStream keys payload schemas by class name: two different ones must not share it."""
    seen: dict[str, JSON] = {}
    for model in registry:
        schema = model.model_json_schema(ref_template=f"{SCHEMAS}/{{model}}")
        for name, definition in {model.__name__: schema, **schema.pop("$defs", {})}.items():
            if seen.setdefault(name, definition) != definition:
                raise ValueError(f"two contract schemas are both named {name}: rename one")


def asyncapi_document(registry: Registry) -> JSON:
    """The AsyncAPI 3.0.0 document of every subscriber and every contract version."""
    _check_schema_names(registry)
    spec = AsyncAPI(
        document_broker(registry),
        title="Warren",
        version="1.0.0",
        description=OVERVIEW,
        schema_version="3.0.0",
    )
    document: JSON = spec.to_specification().to_jsonable()
    messages, schemas = document["components"]["messages"], document["components"]["schemas"]
    for model in registry:
        newest = registry.newest(model.NAME)
        _wire(messages[f"{send_title(model)}:Message"], model, model is not newest)
    for subscription in subscriptions():
        for model in bound_contracts(subscription):
            received = messages[f"{subscription.queue}:{model.NAME}:SubscribeMessage"]
            received["payload"] = {"$ref": f"{SCHEMAS}/{model.__name__}"}
            _wire(received, model, deprecated=False)
    schemas.pop(EMPTY_PAYLOAD, None)
    schemas.update({HEADERS_SCHEMA: AMQP_HEADERS, PROPERTIES_SCHEMA: AMQP_PROPERTIES})
    return document
