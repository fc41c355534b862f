"""The committed JSON Schemas and AsyncAPI document match the contracts and describe them fully."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from referencing import Registry as SchemaRegistry
from referencing.jsonschema import DRAFT202012
from typer.testing import CliRunner

from contracts.base import Message
from contracts.envelope import Envelope
from contracts.orders import PlaceOrder
from contracts.registry import all_messages, default_registry
from contracts.topology import exchange_for, routing_key_for
from contracts.wire_schemas import schema_filename
from tests.contracts.samples import TRACEPARENT, sample
from workers.ops.contracts_cmd import ASYNCAPI_FILE, DEFAULT_DIR, app, expected_files
from workers.runtime.discovery import subscriptions

DOCUMENT_URI = "urn:warren:asyncapi"
MODELS = pytest.mark.parametrize("model", all_messages(), ids=lambda m: m.type_name())


def _committed(name: str) -> Any:
    return json.loads((DEFAULT_DIR / name).read_text(encoding="utf-8"))


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _pointer(document: Any, ref: str) -> Any:
    assert ref.startswith("#/"), ref
    for part in ref[2:].split("/"):
        document = document[part.replace("~1", "/").replace("~0", "~")]
    return document


def _followed(document: Any, ref: str) -> Any:
    """What `ref` points at, following a `$ref` found there (a channel's message refers on)."""
    target = _pointer(document, ref)
    return _followed(document, target["$ref"]) if "$ref" in target else target


def _in_document(pointer: str) -> Draft202012Validator:
    """A validator of the schema at `pointer`, resolved within the committed AsyncAPI document."""
    resource = DRAFT202012.create_resource(_committed(ASYNCAPI_FILE))
    registry: SchemaRegistry[Any] = SchemaRegistry().with_resource(DOCUMENT_URI, resource)
    schema = {"$ref": f"{DOCUMENT_URI}{pointer}"}
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


def test_the_committed_files_are_what_the_contracts_generate() -> None:
    expected = expected_files(default_registry())

    committed = {path.name for path in DEFAULT_DIR.glob("*.json")}

    assert committed == set(expected), "run `warren contracts export` and commit the result"
    for name, text in expected.items():
        assert (DEFAULT_DIR / name).read_text(encoding="utf-8") == text, (
            f"{name} differs from the contracts: run `warren contracts export` and commit it"
        )


@MODELS
def test_every_sample_validates_against_its_committed_schema(model: type[Message]) -> None:
    schema = _committed(schema_filename(model))
    Draft202012Validator.check_schema(schema)

    validator = Draft202012Validator(schema, format_checker=FormatChecker())

    validator.validate(sample(model).model_dump(mode="json"))
    assert schema["title"] == model.type_name()


@pytest.mark.parametrize(
    "change",
    [
        {"items": [{"sku": "BOOK-42", "quantity": 0}]},
        {"items": []},
        {"items": [{"sku": "book 42", "quantity": 1}]},
        {"payment": {"token": "4242424242424242"}},
        {"currency": "euro"},
        {"order_id": "order-1"},
        {"discount_cents": 500},
    ],
    ids=["quantity", "no-items", "sku", "token", "currency", "order-id", "extra-field"],
)
def test_the_schema_refuses_what_the_consumer_refuses(change: dict[str, Any]) -> None:
    payload = {**sample(PlaceOrder).model_dump(mode="json"), **change}
    validator = Draft202012Validator(
        _committed("orders.PlaceOrder.v2.json"), format_checker=FormatChecker()
    )

    with pytest.raises(ValueError):
        PlaceOrder.model_validate(payload)
    assert not validator.is_valid(payload)


def test_every_ref_in_the_asyncapi_document_resolves() -> None:
    document = _committed(ASYNCAPI_FILE)

    refs = set(_refs(document))

    assert refs
    for ref in refs:
        _pointer(document, ref)


@MODELS
def test_the_asyncapi_document_describes_every_message_version(model: type[Message]) -> None:
    document = _committed(ASYNCAPI_FILE)
    type_name, send = model.type_name(), f"send:{model.type_name()}"

    message = document["components"]["messages"][f"{send}:Message"]
    channel = document["channels"][send]
    operation = document["operations"][send]

    assert message["bindings"]["amqp"]["messageType"] == type_name
    assert message["payload"] == {"$ref": f"#/components/schemas/{model.__name__}"}
    assert message["contentType"] == "application/json"
    assert channel["address"] == routing_key_for(model)
    exchange = channel["bindings"]["amqp"]["exchange"]
    assert channel["bindings"]["amqp"]["is"] == "routingKey"
    assert (exchange["name"], exchange["type"], exchange["durable"]) == (
        exchange_for(model),
        "topic",
        True,
    )
    assert channel["messages"]["Message"] == {"$ref": f"#/components/messages/{send}:Message"}
    assert operation["action"] == "send"
    assert operation["bindings"]["amqp"]["deliveryMode"] == 2
    assert {"$ref": f"#/channels/{send}/messages/Message"} in operation["messages"]
    assert message.get("deprecated", False) == (model is not default_registry().newest(model.NAME))


def test_the_asyncapi_document_has_a_receive_operation_per_binding_of_each_work_queue() -> None:
    document = _committed(ASYNCAPI_FILE)

    for sub in subscriptions():
        received = {}
        for operation in document["operations"].values():
            channel = _pointer(document, operation["channel"]["$ref"])
            queue = channel["bindings"]["amqp"].get("queue", {})
            if operation["action"] == "receive" and queue.get("name") == sub.queue:
                (ref,) = operation["messages"]
                received[_followed(document, ref["$ref"])["name"]] = channel["address"]
                assert queue["durable"] is True
        newest = [default_registry().newest(name) for name in sub.messages]
        assert received == {m.type_name(): routing_key_for(m) for m in newest}


@MODELS
def test_a_client_can_build_a_valid_message_from_the_asyncapi_document_alone(
    model: type[Message],
) -> None:
    wire = default_registry().encode(
        Envelope(
            sample(model), correlation_id="flow-1", causation_id="m-0", traceparent=TRACEPARENT
        )
    )
    message = f"#/components/messages/send:{model.type_name()}:Message"
    properties = {
        "type": wire.type,
        "message_id": wire.message_id,
        "correlation_id": wire.correlation_id,
        "timestamp": int(wire.timestamp.timestamp()),
        "content_type": wire.content_type,
        "delivery_mode": 2 if wire.persistent else 1,
    }

    _in_document(f"{message}/payload").validate(json.loads(wire.body))
    assert not _in_document(f"{message}/payload").is_valid({})
    _in_document(f"{message}/headers").validate(wire.headers)
    _in_document(f"{message}/x-amqp-properties").validate(properties)
    with pytest.raises(ValidationError):
        _in_document(f"{message}/x-amqp-properties").validate({**properties, "type": "x.Y.v1"})


def test_export_check_passes_on_the_committed_files() -> None:
    result = CliRunner().invoke(app, ["export", "--check"])

    assert result.exit_code == 0, result.output
    assert "schemas up to date" in result.output


def _copy_of_the_schemas(tmp_path: Path) -> Path:
    directory = tmp_path / "schemas"
    shutil.copytree(DEFAULT_DIR, directory)
    schema = json.loads((directory / "orders.PlaceOrder.v2.json").read_text(encoding="utf-8"))
    schema["properties"]["customer_id"]["maxLength"] = 128  # as if the model had changed
    (directory / "orders.PlaceOrder.v2.json").write_text(json.dumps(schema), encoding="utf-8")
    (directory / "inventory.ReleaseStock.v1.json").unlink()
    (directory / "orders.RetiredCommand.v1.json").write_text("{}\n", encoding="utf-8")
    return directory


def _snapshot(directory: Path) -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in directory.iterdir()}


def test_export_check_names_each_file_that_differs_is_missing_or_stale(tmp_path: Path) -> None:
    directory = _copy_of_the_schemas(tmp_path)
    before = _snapshot(directory)

    result = CliRunner().invoke(app, ["export", "--check", "--dir", str(directory)])

    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any("orders.PlaceOrder.v2.json: differs" in line for line in lines)
    assert any("inventory.ReleaseStock.v1.json: missing" in line for line in lines)
    assert any("orders.RetiredCommand.v1.json: stale" in line for line in lines)
    assert not any("orders.PlaceOrder.v1.json" in line for line in lines)
    assert "run `warren contracts export` and commit the result" in result.output
    assert _snapshot(directory) == before


def test_export_rewrites_what_differs_and_removes_what_is_stale(tmp_path: Path) -> None:
    directory = _copy_of_the_schemas(tmp_path)

    result = CliRunner().invoke(app, ["export", "--dir", str(directory)])

    assert result.exit_code == 0, result.output
    assert _snapshot(directory) == expected_files(default_registry())


def test_warren_contracts_export_check_exits_non_zero_in_a_real_process(tmp_path: Path) -> None:
    directory = _copy_of_the_schemas(tmp_path)
    command = [sys.executable, "-m", "workers.cli", "contracts", "export", "--check"]

    passing = subprocess.run(command, capture_output=True, text=True, timeout=60)
    failing = subprocess.run(
        [*command, "--dir", str(directory)], capture_output=True, text=True, timeout=60
    )

    assert passing.returncode == 0, passing.stderr
    assert failing.returncode == 1
    assert "orders.PlaceOrder.v2.json" in failing.stderr
