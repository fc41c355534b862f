"""What a failed message carries into its retry or its dead-letter queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractIncomingMessage
from pamqp import frame, header

from contracts.topology import DELAY_DELIVERY_EXCHANGE, delay_routing_key
from outbox.amqp import persistent_copy
from workers.runtime.failures import (
    MESSAGE_LIMIT,
    RETRY_ATTEMPT,
    STACK_TRACE_LIMIT,
    FailureReason,
    dead_letter_headers,
    failure_headers,
)

QUEUE = "billing.invoices"
FRAME_MAX = 131_072  # RabbitMQ's default; a content header must fit in one frame
SENT_AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeIncoming:
    """The attributes of `aio_pika.abc.AbstractIncomingMessage` the failure code reads."""

    headers: dict[str, Any] = field(default_factory=dict)
    exchange: str | None = "orders.commands"
    routing_key: str | None = "orders.PlaceOrder"
    body: bytes = b'{"order_id": "6f1c3a52-3d0e-4d57-9a57-0f3f0c1b2a10"}'
    type: str | None = "orders.PlaceOrder.v2"
    message_id: str | None = "msg-1"
    correlation_id: str | None = "flow-1"
    timestamp: datetime | None = SENT_AT
    app_id: str | None = "gateway"
    content_type: str | None = "application/json"
    content_encoding: str | None = None
    priority: int | None = None
    reply_to: str | None = None


def incoming(**attributes: Any) -> AbstractIncomingMessage:
    return cast(AbstractIncomingMessage, FakeIncoming(**attributes))


def redelivered_after_delay(previous: dict[str, Any]) -> AbstractIncomingMessage:
    """How a delayed retry comes back: via the delay levels, with the broker's x-death added."""
    return incoming(
        headers=previous | {"x-death": [{"count": 1, "queue": "warren.delay.03"}]},
        exchange=DELAY_DELIVERY_EXCHANGE,
        routing_key=delay_routing_key(10, QUEUE, 24),
    )


def raised(error: BaseException) -> BaseException:
    """`error` with a real traceback."""
    try:
        raise error
    except BaseException as caught:
        return caught


def parsed(timestamp: str) -> datetime:
    value = datetime.fromisoformat(timestamp)
    assert value.tzinfo is not None, timestamp
    return value


def content_header_size(message: Message) -> int:
    return len(frame.marshal(header.ContentHeader(0, len(message.body), message.properties), 1))


def test_a_first_failure_records_where_the_message_came_from_and_what_went_wrong() -> None:
    # given a command delivered from its exchange with our own headers
    message = incoming(headers={"causation-id": "msg-0", "traceparent": "00-abc-def-01"})

    # when its handler fails
    before = datetime.now(UTC) - timedelta(seconds=1)
    headers = failure_headers(message, QUEUE, TimeoutError("database busy"))

    # then the headers keep ours and say where and how it failed
    assert headers["causation-id"] == "msg-0"
    assert headers["traceparent"] == "00-abc-def-01"
    assert headers["original-exchange"] == "orders.commands"
    assert headers["original-routing-key"] == "orders.PlaceOrder"
    assert headers["original-queue"] == QUEUE
    assert headers["exception-type"] == "TimeoutError"
    assert headers["exception-message"] == "database busy"
    assert before <= parsed(headers["first-failure-at"]) <= parsed(headers["last-failure-at"])


def test_the_brokers_x_headers_are_never_copied() -> None:
    # given a message the broker dead-lettered and redelivered, with its x-* bookkeeping
    message = incoming(
        headers={
            "x-death": [{"count": 3}],
            "x-first-death-exchange": "orders.commands",
            "x-first-death-queue": QUEUE,
            "x-first-death-reason": "rejected",
            "x-delivery-count": 2,
            "causation-id": "msg-0",
        }
    )

    headers = dead_letter_headers(
        message, QUEUE, ValueError("bad"), FailureReason.POISON, "billing-worker@host:1"
    )

    assert not [key for key in headers if key.startswith("x-")]
    assert headers["causation-id"] == "msg-0"


def test_repeated_failures_keep_the_first_failure_and_the_original_destination() -> None:
    # given a message that failed once and came back through the delay levels
    first = failure_headers(incoming(), QUEUE, TimeoutError("first")) | {RETRY_ATTEMPT: 1}
    first["first-failure-at"] = "2025-03-01T12:00:01.000+00:00"
    retried = redelivered_after_delay(first)

    # when it fails again
    second = failure_headers(retried, QUEUE, ConnectionError("second"))

    # then it still points at where it was first published, and when it first failed
    assert second["original-exchange"] == "orders.commands"
    assert second["original-routing-key"] == "orders.PlaceOrder"
    assert second["first-failure-at"] == "2025-03-01T12:00:01.000+00:00"
    assert parsed(second["last-failure-at"]) > parsed(second["first-failure-at"])
    assert second["exception-type"] == "ConnectionError"
    assert second["exception-message"] == "second"
    assert second[RETRY_ATTEMPT] == 1
    assert "x-death" not in second


def test_headers_do_not_grow_with_the_number_of_failures() -> None:
    headers = failure_headers(incoming(), QUEUE, TimeoutError("again")) | {RETRY_ATTEMPT: 1}
    keys_after_one = set(headers)

    for attempt in range(2, 50):
        headers = failure_headers(redelivered_after_delay(headers), QUEUE, TimeoutError("again"))
        headers[RETRY_ATTEMPT] = attempt

    assert set(headers) == keys_after_one


def test_original_destination_headers_that_arrive_as_bytes_come_out_as_text() -> None:
    message = incoming(
        headers={"original-exchange": b"orders.commands", "first-failure-at": b"2025-03-01"},
        exchange=DELAY_DELIVERY_EXCHANGE,
    )

    headers = failure_headers(message, QUEUE, TimeoutError())

    assert headers["original-exchange"] == "orders.commands"
    assert headers["first-failure-at"] == "2025-03-01"


def test_a_long_exception_message_is_truncated() -> None:
    headers = failure_headers(incoming(), QUEUE, ValueError("x" * (MESSAGE_LIMIT * 5)))

    assert headers["exception-message"] == "x" * MESSAGE_LIMIT


def fail_deeply(depth: int) -> None:
    if depth:
        call_deeper(depth - 1)  # alternate frames: Python folds identical repeated ones
    raise RuntimeError("stock table locked")


def call_deeper(depth: int) -> None:
    fail_deeply(depth)


def deep_error(depth: int = 300) -> BaseException:
    try:
        fail_deeply(depth)
    except RuntimeError as error:
        return error
    raise AssertionError("unreachable")


def test_a_dead_letter_says_why_how_often_and_where() -> None:
    # given a message on its fourth delayed retry
    message = incoming(headers={RETRY_ATTEMPT: 4})

    # when its budget is spent
    headers = dead_letter_headers(
        message, QUEUE, raised(TimeoutError("db")), FailureReason.EXHAUSTED, "billing-worker@h:7"
    )

    # then the dead letter records reason, attempts, worker and the stack trace
    assert headers["failure-reason"] == "exhausted"
    assert headers["attempts"] == 5
    assert headers["worker"] == "billing-worker@h:7"
    assert headers["original-queue"] == QUEUE
    assert "TimeoutError: db" in headers["stack-trace"]
    assert "Traceback" in headers["stack-trace"]


def test_a_deep_stack_trace_is_truncated_and_keeps_its_end() -> None:
    headers = dead_letter_headers(
        incoming(), QUEUE, deep_error(), FailureReason.CRASH_LOOP, "billing-worker@h:7"
    )

    trace = headers["stack-trace"]
    assert len(trace) == STACK_TRACE_LIMIT
    assert trace.endswith("RuntimeError: stock table locked\n")
    assert "in fail_deeply" in trace


def test_the_dead_letter_of_a_huge_failure_fits_in_one_amqp_frame() -> None:
    # given a deep stack and a huge non-ASCII message (up to 4 bytes per character)
    error = deep_error()
    error.args = ("€" * 100_000,)
    message = incoming(headers={"causation-id": "msg-0", RETRY_ATTEMPT: 5})

    # when it is dead-lettered
    headers = dead_letter_headers(message, QUEUE, error, FailureReason.EXHAUSTED, "w@h:1")
    copy = persistent_copy(message, headers)

    # then its properties still fit the broker's frame size
    assert content_header_size(copy) < FRAME_MAX


def test_a_long_exception_message_does_not_push_the_frames_out_of_the_stack_trace() -> None:
    error = deep_error(depth=3)
    error.args = ("INSERT INTO stock ... [parameters: " + "('SKU-1', 1), " * 1_000 + "]",)

    headers = dead_letter_headers(incoming(), QUEUE, error, FailureReason.EXHAUSTED, "w@h:1")

    assert "in fail_deeply" in headers["stack-trace"]


def test_a_message_with_a_non_utf8_header_can_still_be_retried() -> None:
    # given a foreign producer's header that is not valid UTF-8 (pamqp hands it over as bytes)
    message = incoming(headers={"legacy-tag": b"caf\xe9"})

    # when the failure copy is built
    headers = failure_headers(message, QUEUE, TimeoutError()) | {RETRY_ATTEMPT: 1}

    # then it can be encoded for publishing
    assert content_header_size(persistent_copy(message, headers)) > 0


def test_the_copy_keeps_body_and_properties_is_persistent_and_carries_the_new_headers() -> None:
    message = incoming(headers={"causation-id": "msg-0"})
    headers = failure_headers(message, QUEUE, TimeoutError("db")) | {RETRY_ATTEMPT: 1}

    copy = persistent_copy(message, headers)

    assert copy.body == message.body
    assert copy.type == "orders.PlaceOrder.v2"
    assert copy.message_id == "msg-1"
    assert copy.correlation_id == "flow-1"
    assert copy.timestamp == SENT_AT
    assert copy.app_id == "gateway"
    assert copy.content_type == "application/json"
    assert copy.delivery_mode == DeliveryMode.PERSISTENT
    assert copy.headers == headers
