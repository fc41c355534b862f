"""The broker topology plan: work queues, dead-letter queues and contract bindings."""

from __future__ import annotations

import pytest

from config.settings import Settings
from contracts.base import Command, Event, Message
from contracts.registry import default_registry
from contracts.topology import (
    DEAD_LETTER_EXCHANGE,
    UNROUTED_EXCHANGE,
    UNROUTED_QUEUE,
    dead_letter_queue,
    exchange_for,
    routing_key_for,
)
from tests.unit.broker_model import BrokerModel
from workers.runtime.discovery import subscriptions
from workers.runtime.topology import TopologyPlan, build_plan

QUORUM_ONLY = ("x-delivery-limit", "x-dead-letter-strategy")
WORK_QUEUES = [sub.queue for sub in subscriptions()]


@pytest.fixture(scope="module")
def settings() -> Settings:
    # a delivery-limit other than the default, to see that it comes from the settings
    return Settings(_env_file=None, delivery_limit=17)


@pytest.fixture(scope="module")
def plan(settings: Settings) -> TopologyPlan:
    return build_plan(settings)


def queue_arguments(plan: TopologyPlan) -> dict[str, dict[str, object]]:
    return {spec.name: spec.arguments for spec in plan.queues}


def subscribers(message_name: str) -> set[str]:
    return {sub.queue for sub in subscriptions() if message_name in sub.messages}


def test_the_plan_has_one_work_queue_per_subscription(plan: TopologyPlan) -> None:
    assert list(plan.work_queues) == WORK_QUEUES
    names = [spec.name for spec in plan.queues]
    assert len(names) == len(set(names)), "a queue is declared twice"


@pytest.mark.parametrize("queue", WORK_QUEUES)
def test_a_work_queue_is_a_quorum_queue_that_dead_letters_to_its_own_dlq(
    plan: TopologyPlan, settings: Settings, queue: str
) -> None:
    arguments = queue_arguments(plan)[queue]
    broker = BrokerModel(plan)

    # given a work queue from the plan
    assert arguments["x-queue-type"] == "quorum"
    assert arguments["x-delivery-limit"] == settings.delivery_limit
    assert arguments["x-dead-letter-exchange"] == DEAD_LETTER_EXCHANGE

    # when the broker dead-letters one of its messages
    reached = broker.route(
        str(arguments["x-dead-letter-exchange"]), str(arguments["x-dead-letter-routing-key"])
    )

    # then it lands in that queue's own DLQ, and only there
    assert reached == {dead_letter_queue(queue)}
    assert queue_arguments(plan)[dead_letter_queue(queue)]["x-queue-type"] == "quorum"


def test_the_dead_letter_exchange_is_direct_so_one_dlq_never_sees_anothers_messages(
    plan: TopologyPlan,
) -> None:
    types = {spec.name: spec.type for spec in plan.exchanges}
    dlq_bindings = [b for b in plan.bindings if b.source == DEAD_LETTER_EXCHANGE]

    assert types[DEAD_LETTER_EXCHANGE] == "direct"
    assert sorted((b.destination, b.routing_key) for b in dlq_bindings) == sorted(
        (dead_letter_queue(q), dead_letter_queue(q)) for q in WORK_QUEUES
    )


@pytest.mark.parametrize("model", list(default_registry()), ids=lambda m: m.type_name())
def test_a_published_contract_reaches_exactly_the_queues_that_subscribe_to_it(
    plan: TopologyPlan, model: type[Message]
) -> None:
    # given a message published where the unit of work publishes it
    broker = BrokerModel(plan)

    # when the broker routes it
    reached = broker.route(exchange_for(model), routing_key_for(model))

    # then it reaches its subscribers, every version alike, and never the parking queue: today
    # every contract has a subscriber
    assert reached == subscribers(model.NAME)
    assert reached, f"{model.type_name()} has no subscriber: it would only be parked"
    assert UNROUTED_QUEUE not in reached


@pytest.mark.parametrize(
    "model",
    [m for m in default_registry() if issubclass(m, Command)],
    ids=lambda m: m.type_name(),
)
def test_a_command_has_exactly_one_handler_queue(plan: TopologyPlan, model: type[Message]) -> None:
    assert len(BrokerModel(plan).route(exchange_for(model), routing_key_for(model))) == 1


def test_every_subscribed_message_is_bound_from_its_exchange_with_its_routing_key(
    plan: TopologyPlan,
) -> None:
    bindings = {(b.source, b.destination, b.routing_key) for b in plan.bindings}
    for sub in subscriptions():
        for name in sub.messages:
            model = default_registry().newest(name)
            assert (exchange_for(model), sub.queue, routing_key_for(model)) in bindings


def test_every_exchange_a_binding_uses_is_declared(plan: TopologyPlan) -> None:
    declared = {spec.name for spec in plan.exchanges}
    used = {b.source for b in plan.bindings} | {
        b.destination for b in plan.bindings if b.destination_type == "exchange"
    }

    assert used <= declared


def test_classic_queues_leave_out_the_quorum_only_arguments_but_still_dead_letter() -> None:
    # given an operator who chose classic queues
    plan = build_plan(Settings(_env_file=None, queue_type="classic"))
    arguments = queue_arguments(plan)
    broker = BrokerModel(plan)

    for queue in WORK_QUEUES:
        # then the work queue and its DLQ are classic, without arguments RabbitMQ would refuse
        assert arguments[queue]["x-queue-type"] == "classic"
        assert arguments[dead_letter_queue(queue)]["x-queue-type"] == "classic"
        for key in QUORUM_ONLY:
            assert key not in arguments[queue]
        # and a dead-lettered message still reaches its DLQ
        reached = broker.route(
            str(arguments[queue]["x-dead-letter-exchange"]),
            str(arguments[queue]["x-dead-letter-routing-key"]),
        )
        assert reached == {dead_letter_queue(queue)}


@pytest.mark.parametrize("model", list(default_registry()), ids=lambda m: m.type_name())
def test_an_event_nobody_subscribes_to_is_parked_and_a_command_stays_unroutable(
    settings: Settings, model: type[Message]
) -> None:
    # given a broker where no service has subscribed to anything yet
    broker = BrokerModel(build_plan(settings, []))

    # when a contract is published where the unit of work publishes it
    reached = broker.route(exchange_for(model), routing_key_for(model))

    # then an event lands in the parking queue (published, findable); a command reaches nothing,
    # which the relay's mandatory publish turns into a visible, backed-off error
    assert reached == ({UNROUTED_QUEUE} if issubclass(model, Event) else set())


def test_only_event_exchanges_have_the_alternate_exchange(plan: TopologyPlan) -> None:
    events = {exchange_for(m) for m in default_registry() if issubclass(m, Event)}
    alternates = {spec.name: spec.arguments.get("alternate-exchange") for spec in plan.exchanges}

    assert {name for name, alternate in alternates.items() if alternate} == events
    assert all(alternates[name] == UNROUTED_EXCHANGE for name in events)


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_the_parking_queue_is_bounded_and_refuses_rather_than_drops_when_full(
    queue_type: str,
) -> None:
    settings = Settings(_env_file=None, queue_type=queue_type, unrouted_max_length=500)
    plan = build_plan(settings)

    assert queue_arguments(plan)[UNROUTED_QUEUE] == {
        "x-queue-type": queue_type,
        "x-max-length": 500,
        "x-overflow": "reject-publish",
    }
    assert {spec.name: spec.type for spec in plan.exchanges}[UNROUTED_EXCHANGE] == "fanout"
    # a fanout binding takes every routing key, from every event exchange
    assert BrokerModel(plan).route(UNROUTED_EXCHANGE, "any.Thing") == {UNROUTED_QUEUE}
