"""Encoding and decoding through the registry: identity, AMQP properties, upcasting, poison."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from contracts.base import Message
from contracts.envelope import Envelope
from contracts.errors import (
    MalformedMessage,
    PoisonMessage,
    SchemaViolation,
    UnknownMessageType,
    UnsupportedVersion,
)
from contracts.inventory import ReleaseStock, ReserveStock
from contracts.orders import PlaceOrder, PlaceOrderV1
from contracts.registry import all_messages, default_registry
from tests.contracts.samples import ADDRESS, ORDER_ID, TOKEN, TRACEPARENT, sample

DECODE_ERRORS: tuple[type[PoisonMessage], ...] = (
    MalformedMessage,
    UnknownMessageType,
    UnsupportedVersion,
    SchemaViolation,
)


def _body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def _place_order_v2(**changes: Any) -> dict[str, Any]:
    return {**sample(PlaceOrder).model_dump(mode="json"), **changes}


@pytest.mark.parametrize("model", all_messages(), ids=lambda m: m.type_name())
def test_every_contract_version_round_trips(model: type[Message]) -> None:
    registry = default_registry()
    original = sample(model)

    wire = registry.encode(Envelope(original, correlation_id="flow-1"))
    decoded = registry.decode(
        wire.body,
        type_name=wire.type,
        message_id=wire.message_id,
        correlation_id=wire.correlation_id,
        timestamp=wire.timestamp,
        headers=wire.headers,
    )

    newest = registry.newest(model.NAME)
    assert type(decoded.message) is newest
    assert model.model_validate_json(wire.body) == original
    if model is newest:
        assert decoded.message == original
    assert (decoded.message_id, decoded.correlation_id) == (wire.message_id, "flow-1")


def test_encoding_puts_identity_and_trace_into_amqp_properties() -> None:
    envelope = Envelope(
        sample(ReserveStock),
        message_id="msg-2",
        correlation_id="flow-1",
        causation_id="msg-1",
        traceparent=TRACEPARENT,
    )

    wire = default_registry().encode(envelope)

    assert wire.type == "inventory.ReserveStock.v1"
    assert (wire.message_id, wire.correlation_id) == ("msg-2", "flow-1")
    assert wire.timestamp == envelope.timestamp
    assert wire.headers == {"causation-id": "msg-1", "traceparent": TRACEPARENT}
    assert wire.content_type == "application/json"
    assert wire.persistent
    assert json.loads(wire.body) == envelope.message.model_dump(mode="json")


def test_decoding_reads_causation_and_trace_from_headers_even_as_bytes() -> None:
    wire = default_registry().encode(Envelope(sample(ReleaseStock), message_id="msg-2"))

    decoded = default_registry().decode(
        wire.body,
        type_name=wire.type,
        message_id=wire.message_id,
        correlation_id="flow-1",
        headers={"causation-id": b"msg-1", "traceparent": TRACEPARENT.encode()},
    )

    assert decoded.message == sample(ReleaseStock)
    assert (decoded.message_id, decoded.correlation_id) == ("msg-2", "flow-1")
    assert (decoded.causation_id, decoded.traceparent) == ("msg-1", TRACEPARENT)


def test_a_v1_place_order_decodes_as_v2_through_the_upcaster() -> None:
    v1 = {
        "order_id": str(ORDER_ID),
        "customer_id": "cust-1",
        "items": [{"sku": "BOOK-42", "quantity": 2}],
        "payment_token": TOKEN,
        "shipping_address": ADDRESS.model_dump(),
    }

    message = default_registry().decode_body("orders.PlaceOrder.v1", _body(v1))

    assert isinstance(message, PlaceOrder)
    assert message.payment.token == TOKEN
    assert message.currency == "EUR"
    assert (message.order_id, message.customer_id) == (ORDER_ID, "cust-1")
    assert message.shipping_address == ADDRESS
    assert [(line.sku, line.quantity) for line in message.items] == [("BOOK-42", 2)]


def test_an_encoded_v1_still_says_v1_on_the_wire() -> None:
    wire = default_registry().encode(Envelope(sample(PlaceOrderV1)))

    assert wire.type == "orders.PlaceOrder.v1"
    assert default_registry().decode_body(wire.type, wire.body).VERSION == 2


def test_an_unknown_name_is_unknown_message_type() -> None:
    with pytest.raises(UnknownMessageType) as caught:
        default_registry().decode_body("orders.RefundEverything.v1", _body({}))

    assert type(caught.value) is UnknownMessageType
    assert caught.value.name == "orders.RefundEverything"


def test_a_version_newer_than_known_is_unsupported_version() -> None:
    with pytest.raises(UnsupportedVersion) as caught:
        default_registry().decode_body("orders.PlaceOrder.v3", _body(_place_order_v2()))

    assert type(caught.value) is UnsupportedVersion
    assert (caught.value.name, caught.value.version, caught.value.newest) == (
        "orders.PlaceOrder",
        3,
        2,
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (_place_order_v2(items=[{"sku": "BOOK-42", "quantity": 0}]), "items.0.quantity"),
        (_place_order_v2(items=[]), "items"),
        (_place_order_v2(payment={"token": "4242424242424242"}), "payment.token"),
        (_place_order_v2(currency="euro"), "currency"),
        (_place_order_v2(discount_cents=500), "discount_cents"),
        ({k: v for k, v in _place_order_v2().items() if k != "customer_id"}, "customer_id"),
    ],
    ids=["quantity-zero", "no-items", "card-number", "currency", "extra-field", "missing"],
)
def test_a_payload_that_breaks_the_contract_is_a_schema_violation_naming_the_field(
    payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(SchemaViolation) as caught:
        default_registry().decode_body("orders.PlaceOrder.v2", _body(payload))

    assert type(caught.value) is SchemaViolation
    assert caught.value.field == field
    assert caught.value.type_name == "orders.PlaceOrder.v2"


def test_a_body_that_is_not_json_is_malformed() -> None:
    with pytest.raises(MalformedMessage):
        default_registry().decode_body("orders.PlaceOrder.v2", b'{"order_id": ')
    with pytest.raises(MalformedMessage):
        default_registry().decode_body("orders.PlaceOrder.v2", b"\xff\xfe not utf-8")


@pytest.mark.parametrize(
    "type_name", [None, "", "orders.PlaceOrder", "orders.PlaceOrder.vX", ".v1", "PlaceOrder v2"]
)
def test_a_missing_or_garbled_type_is_malformed(type_name: str | None) -> None:
    with pytest.raises(MalformedMessage) as caught:
        default_registry().decode_body(type_name, _body(_place_order_v2()))

    assert type(caught.value) is MalformedMessage


def test_a_missing_message_id_is_malformed() -> None:
    wire = default_registry().encode(Envelope(sample(ReleaseStock)))

    with pytest.raises(MalformedMessage):
        default_registry().decode(wire.body, type_name=wire.type, message_id=None)


def test_the_decode_errors_are_distinct_poison() -> None:
    assert all(issubclass(error, PoisonMessage) for error in DECODE_ERRORS)
    for one, other in itertools.permutations(DECODE_ERRORS, 2):
        assert not issubclass(one, other), f"{one.__name__} is a {other.__name__}"
