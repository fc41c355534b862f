"""What the consumer acks, rejects and publishes, and when: fake deliveries, a real SQLite inbox.

The broker's side (retries through delay levels, DLX, TTL, redelivery, confirms) is covered by
the integration tests on a real RabbitMQ; here the publisher and the deliveries are fakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from config.settings import Settings
from contracts.envelope import Envelope
from contracts.orders import PlaceOrder
from contracts.registry import default_registry
from contracts.topology import DEAD_LETTER_EXCHANGE, DELAY_PREFIX
from outbox.db import HeldConnection, session_factory
from outbox.tables import CrashJournal, InboxMessage, OutboxMessage
from outbox.unit_of_work import UnitOfWork
from tests.contracts.samples import sample
from tests.support.fakes import FakeChannel, FakeDelivery, RecordingPublisher, RefusingPublisher
from workers.runtime.consumer import Consumer
from workers.runtime.errors import PermanentError, TransientError
from workers.runtime.failures import RETRY_ATTEMPT
from workers.runtime.isolation import CRASHES_TO_CONVICT, CrashJournals

QUEUE = "billing.invoices"
Journal = list[str]


class JournalPublisher(RecordingPublisher):
    """A confirming publisher that notes each publish in the shared journal."""

    def __init__(self, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    async def publish(
        self, message: aio_pika.Message, exchange: str, routing_key: str, *, timeout: float = 10.0
    ) -> Any:
        await super().publish(message, exchange, routing_key)
        self.journal.append(f"publish {exchange}")


class Script:
    """A PlaceOrder handler scripted by customer id: `ok`, `flaky`, `transient`, `permanent`."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    async def place_order(self, envelope: Envelope[Any], uow: UnitOfWork) -> None:
        mode = envelope.message.customer_id
        self.calls[mode] = self.calls.get(mode, 0) + 1
        if mode == "permanent":
            raise PermanentError("scripted")
        if mode == "transient" or (mode == "flaky" and self.calls[mode] == 1):
            raise TransientError("scripted")
        uow.publish(envelope.caused(sample(PlaceOrder)))


def delivery(mode: str, journal: Journal, **attributes: Any) -> FakeDelivery:
    order = sample(PlaceOrder).model_copy(update={"customer_id": mode})
    return FakeDelivery.of(Envelope(order), default_registry(), settled=journal, **attributes)


async def count(engine: AsyncEngine, table: Any) -> int:
    async with session_factory(engine)() as session:
        return (await session.exec(select(func.count()).select_from(table))).one()


@pytest.fixture
def journal() -> Journal:
    return []


@pytest.fixture(params=["pool", "held"])
async def make_consumer(
    request: pytest.FixtureRequest, engine: AsyncEngine, journal: Journal
) -> AsyncIterator[Callable[..., tuple[Consumer, Script]]]:
    """Consumers whose transactions check a connection out of the pool each time, or run on one
    held between them (as a worker's do)."""
    made: list[Consumer] = []

    def make(
        publisher: Any = None, on_commit: Callable[[], None] | None = None, **settings: Any
    ) -> tuple[Consumer, Script]:
        script = Script()
        values = {"immediate_retries": 0, "immediate_retry_base_s": 0.001, "delayed_retries": 2}
        consumer = Consumer(
            service="billing",
            queue=QUEUE,
            handlers={PlaceOrder.NAME: script.place_order},
            sessions=session_factory(engine),
            publisher=publisher or JournalPublisher(journal),
            settings=Settings(_env_file=None, **(values | settings)),
            on_commit=on_commit,
            connection=HeldConnection(engine) if request.param == "held" else None,
        )
        made.append(consumer)
        return consumer, script

    yield make
    for consumer in made:
        await consumer.close()


async def test_a_handled_message_is_acked_once_after_its_commit(
    make_consumer: Callable[..., tuple[Consumer, Script]], engine: AsyncEngine, journal: Journal
) -> None:
    consumer, _ = make_consumer()
    committed: list[int] = []

    class Watched(FakeDelivery):
        async def ack(self, multiple: bool = False) -> None:
            committed.append(await count(engine, InboxMessage))
            await super().ack(multiple)

    fake = Watched(**vars(delivery("ok", journal)))

    await consumer.handle(fake.incoming())

    assert journal == ["ack"]
    assert committed == [1]  # the inbox row was committed when the ack went out
    assert await count(engine, OutboxMessage) == 1


async def test_a_redelivered_message_is_acked_without_running_its_handler_again(
    make_consumer: Callable[..., tuple[Consumer, Script]], engine: AsyncEngine, journal: Journal
) -> None:
    consumer, script = make_consumer()
    first = delivery("ok", journal)
    again = FakeDelivery(**(vars(first) | {"settled": journal}))

    await consumer.handle(first.incoming())
    await consumer.handle(again.incoming())

    assert journal == ["ack", "ack"]
    assert script.calls == {"ok": 1}
    assert await count(engine, OutboxMessage) == 1


async def test_a_poison_body_is_dead_lettered_then_acked(
    make_consumer: Callable[..., tuple[Consumer, Script]], engine: AsyncEngine, journal: Journal
) -> None:
    consumer, script = make_consumer()
    fake = FakeDelivery(body=b"{not json", type=PlaceOrder.type_name(), message_id="m-1")
    fake.settled = journal

    await consumer.handle(fake.incoming())

    assert journal == [f"publish {DEAD_LETTER_EXCHANGE}", "ack"]
    assert script.calls == {}
    assert await count(engine, InboxMessage) == 0


async def test_a_permanent_failure_is_dead_lettered_with_no_retry_and_no_trace_in_the_db(
    make_consumer: Callable[..., tuple[Consumer, Script]], engine: AsyncEngine, journal: Journal
) -> None:
    publisher = JournalPublisher(journal)
    consumer, script = make_consumer(publisher, immediate_retries=2)

    await consumer.handle(delivery("permanent", journal).incoming())

    assert journal == [f"publish {DEAD_LETTER_EXCHANGE}", "ack"]
    assert script.calls == {"permanent": 1}
    ((_, routing_key, copy),) = publisher.sent
    assert routing_key == f"{QUEUE}.dlq"
    assert copy.headers["failure-reason"] == "poison"
    assert await count(engine, InboxMessage) == 0 and await count(engine, OutboxMessage) == 0


async def test_a_transient_failure_is_retried_at_once_then_sent_to_a_delay_level(
    make_consumer: Callable[..., tuple[Consumer, Script]], engine: AsyncEngine, journal: Journal
) -> None:
    publisher = JournalPublisher(journal)
    consumer, script = make_consumer(publisher, immediate_retries=1)

    await consumer.handle(delivery("transient", journal).incoming())

    assert script.calls == {"transient": 2}
    ((exchange, _, copy),) = publisher.sent
    assert exchange.startswith(DELAY_PREFIX)
    assert copy.headers[RETRY_ATTEMPT] == 1
    assert journal == [f"publish {exchange}", "ack"]
    assert await count(engine, InboxMessage) == 0


async def test_an_immediate_retry_that_succeeds_publishes_nothing(
    make_consumer: Callable[..., tuple[Consumer, Script]], engine: AsyncEngine, journal: Journal
) -> None:
    consumer, script = make_consumer(immediate_retries=1)

    await consumer.handle(delivery("flaky", journal).incoming())

    assert journal == ["ack"] and script.calls == {"flaky": 2}
    assert await count(engine, InboxMessage) == 1


async def test_a_spent_budget_is_dead_lettered_as_exhausted(
    make_consumer: Callable[..., tuple[Consumer, Script]], journal: Journal
) -> None:
    publisher = JournalPublisher(journal)
    consumer, _ = make_consumer(publisher)
    fake = delivery("transient", journal)
    fake.headers[RETRY_ATTEMPT] = 2

    await consumer.handle(fake.incoming())

    ((exchange, _, copy),) = publisher.sent
    assert (exchange, copy.headers["failure-reason"]) == (DEAD_LETTER_EXCHANGE, "exhausted")
    assert copy.headers["attempts"] == 3
    assert journal == [f"publish {DEAD_LETTER_EXCHANGE}", "ack"]


@pytest.mark.parametrize(("closed", "settled"), [(False, ["requeue"]), (True, [])])
async def test_a_copy_the_broker_refuses_leaves_the_original_unacked(
    make_consumer: Callable[..., tuple[Consumer, Script]],
    journal: Journal,
    closed: bool,
    settled: list[str],
) -> None:
    publisher = RefusingPublisher()
    consumer, _ = make_consumer(publisher)

    await consumer.handle(delivery("permanent", journal, channel=FakeChannel(closed)).incoming())

    assert publisher.attempts == 1
    assert journal == settled  # requeued while the channel lives; never acked


async def test_a_failing_message_in_a_batch_does_not_hold_back_the_others(
    make_consumer: Callable[..., tuple[Consumer, Script]], engine: AsyncEngine, journal: Journal
) -> None:
    consumer, script = make_consumer()
    modes = ["ok", "ok", "permanent", "ok"]
    fakes = [delivery(mode, []) for mode in modes]

    await asyncio.gather(*(consumer.handle(fake.incoming()) for fake in fakes))

    assert [fake.settled for fake in fakes] == [["ack"], ["ack"], ["ack"], ["ack"]]
    assert script.calls == {"ok": 3 + 2, "permanent": 1}  # the two before it ran twice
    assert await count(engine, InboxMessage) == 3
    assert await count(engine, OutboxMessage) == 3


async def test_messages_that_arrive_together_commit_in_one_batch(
    make_consumer: Callable[..., tuple[Consumer, Script]], engine: AsyncEngine
) -> None:
    commits: list[None] = []
    consumer, script = make_consumer(on_commit=lambda: commits.append(None))
    fakes = [delivery("ok", []) for _ in range(5)]

    await asyncio.gather(*(consumer.handle(fake.incoming()) for fake in fakes))

    assert all(fake.settled == ["ack"] for fake in fakes)
    assert len(commits) == 1 and script.calls == {"ok": 5}
    assert await count(engine, InboxMessage) == 5


async def test_a_redelivery_that_killed_workers_alone_is_dead_lettered_as_a_crash_loop(
    make_consumer: Callable[..., tuple[Consumer, Script]], engine: AsyncEngine, journal: Journal
) -> None:
    publisher = JournalPublisher(journal)
    consumer, script = make_consumer(publisher)
    again = delivery("ok", journal, redelivered=True)

    # given two workers died handling this redelivery alone (their journal rows outlived them)
    for _ in range(CRASHES_TO_CONVICT):
        await CrashJournals(QUEUE, session_factory(engine)).begin(again.message_id or "")
    # when it comes back once more
    await consumer.handle(again.incoming())

    # then it is dead-lettered as a crash loop without running again, and the journal forgets it
    assert journal == [f"publish {DEAD_LETTER_EXCHANGE}", "ack"]
    assert publisher.sent[0][2].headers["failure-reason"] == "crash-loop"
    assert script.calls == {}
    assert await count(engine, CrashJournal) == 0


async def test_a_redelivery_runs_alone_and_leaves_no_journal_row(
    make_consumer: Callable[..., tuple[Consumer, Script]], engine: AsyncEngine, journal: Journal
) -> None:
    consumer, script = make_consumer()

    await consumer.handle(delivery("ok", journal, redelivered=True).incoming())

    assert journal == ["ack"]
    assert script.calls == {"ok": 1}
    assert await count(engine, CrashJournal) == 0
