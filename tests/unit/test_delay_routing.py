"""Broker-side delay levels, proven on a model of RabbitMQ routing.

A delayed message enters the level of the highest set bit of its delay; each delay queue holds it
for its `x-message-ttl` and dead-letters it, routing key unchanged, to its
`x-dead-letter-exchange`; at the bottom the delivery exchange hands it to its work queue.

See `docs/architecture.md`, "Delayed delivery".
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from config.settings import Settings
from contracts.topology import (
    DELAY_DELIVERY_EXCHANGE,
    Subscription,
    delay_entry_exchange,
    delay_queue,
    delay_routing_key,
    delay_target,
    delay_units,
    suffix_clashes,
)
from tests.unit.broker_model import BrokerModel, topic_matches
from workers.runtime.discovery import subscriptions
from workers.runtime.topology import build_plan

WORK_QUEUES = [sub.queue for sub in subscriptions()]


@dataclass(frozen=True)
class Journey:
    """What happened to one delayed message between publish and its work queue."""

    destination: str
    elapsed_ms: int
    delay_queues: list[str]


def deliver_later(broker: BrokerModel, delay_ms: int, queue: str, settings: Settings) -> Journey:
    """Publish like the relay and the scheduler do, then let every delay queue expire in turn."""
    exchange, routing_key = delay_target(
        delay_ms, queue, settings.delay_unit_ms, settings.delay_levels
    )
    elapsed_ms, passed = 0, list[str]()
    for _ in range(settings.delay_levels + 1):
        reached = broker.route(exchange, routing_key)
        assert len(reached) == 1, f"{routing_key} via {exchange} reached {sorted(reached)}"
        (held_in,) = reached
        if held_in not in broker.queue_arguments or held_in in broker.plan.work_queues:
            return Journey(held_in, elapsed_ms, passed)
        arguments = broker.queue_arguments[held_in]
        # dead-lettering keeps the routing key unless the queue overrides it
        assert "x-dead-letter-routing-key" not in arguments
        elapsed_ms += int(arguments["x-message-ttl"])
        exchange = str(arguments["x-dead-letter-exchange"])
        passed.append(held_in)
    raise AssertionError(f"{routing_key} still in the delay levels after {passed}")


def set_bits_high_to_low(units: int) -> list[int]:
    return [level for level in reversed(range(units.bit_length())) if units >> level & 1]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(_env_file=None)


@pytest.fixture(scope="module")
def broker(settings: Settings) -> BrokerModel:
    return BrokerModel(build_plan(settings))


def interesting_delays_ms(settings: Settings) -> list[int]:
    unit, levels = settings.delay_unit_ms, settings.delay_levels
    edges = [0, 1, unit - 1, unit, unit + 1, 2 * unit, 3 * unit, (2**levels - 1) * unit]
    powers = [unit * 2**level for level in range(levels)]
    rng = random.Random(20240601)
    randoms = [rng.randrange(0, (2**levels - 1) * unit + 1) for _ in range(150)]
    return edges + powers + randoms


def test_the_model_matches_topics_as_rabbitmq_does() -> None:
    # a wrong model would prove nothing: pin down the rules it relies on
    assert topic_matches("*.1.#", "0.1")
    assert topic_matches("*.1.#", "0.1.ledger.main")
    assert not topic_matches("*.1.#", "1.0.ledger.main")
    assert not topic_matches("*.1.#", "1")
    assert topic_matches("1.#", "1.0.ledger.main")
    assert topic_matches("#.ledger.main", "ledger.main")
    assert topic_matches("#.ledger.main", "0.1.ledger.main")
    assert not topic_matches("#.ledger.main", "0.1.xledger.main")
    assert not topic_matches("#.ledger.main", "0.1.ledger.main.dlq")
    assert topic_matches("#", "")
    assert topic_matches("#", "a.b.c")


@pytest.mark.parametrize("queue", WORK_QUEUES)
def test_every_delay_reaches_its_queue_after_exactly_its_units(
    broker: BrokerModel, settings: Settings, queue: str
) -> None:
    unit = settings.delay_unit_ms
    for delay_ms in interesting_delays_ms(settings):
        # given a message to deliver to `queue` after `delay_ms`
        units = delay_units(delay_ms, unit)

        # when it travels through the delay levels
        journey = deliver_later(broker, delay_ms, queue, settings)

        # then it reaches exactly its queue, never early and at most one unit late,
        assert journey.destination == queue, delay_ms
        assert journey.elapsed_ms == units * unit, delay_ms
        assert delay_ms <= journey.elapsed_ms < delay_ms + unit, delay_ms
        # having waited in one delay queue per set bit of its delay, longest first
        assert journey.delay_queues == [delay_queue(b) for b in set_bits_high_to_low(units)]


def test_every_delay_a_small_topology_can_express_arrives_on_time() -> None:
    # given four levels of 10 ms: delays of 0 to 15 units
    settings = Settings(_env_file=None, delay_levels=4, delay_unit_ms=10)
    broker = BrokerModel(build_plan(settings))

    for units in range(2**4):
        for queue in WORK_QUEUES:
            journey = deliver_later(broker, units * 10, queue, settings)

            assert journey.destination == queue
            assert journey.elapsed_ms == units * 10
            assert len(journey.delay_queues) == units.bit_count()


def test_a_zero_delay_goes_straight_to_the_delivery_exchange(settings: Settings) -> None:
    exchange, routing_key = delay_target(0, "ledger.main", settings.delay_unit_ms, 4)

    assert exchange == DELAY_DELIVERY_EXCHANGE
    assert routing_key == "0.0.0.0.ledger.main"


def test_the_routing_key_carries_the_delay_bits_most_significant_first() -> None:
    assert delay_routing_key(6, "ledger.main", 4) == "0.1.1.0.ledger.main"
    assert delay_entry_exchange(6) == "warren.delay.02"


@pytest.mark.parametrize(
    ("delay_ms", "units"),
    [(0, 0), (-50, 0), (1, 1), (99, 1), (100, 1), (101, 2), (250, 3), (1000, 10)],
)
def test_delays_round_up_to_whole_units_so_nothing_arrives_early(delay_ms: int, units: int) -> None:
    assert delay_units(delay_ms, 100) == units


def test_a_delay_longer_than_the_levels_can_hold_is_refused(settings: Settings) -> None:
    unit, levels = settings.delay_unit_ms, settings.delay_levels
    longest_ms = (2**levels - 1) * unit

    delay_target(longest_ms, "ledger.main", unit, levels)  # the longest delay still fits
    for too_long_ms in (longest_ms + 1, 2**levels * unit, 10 * 2**levels * unit):
        with pytest.raises(ValueError, match="does not fit"):
            delay_target(too_long_ms, "ledger.main", unit, levels)


def test_a_negative_number_of_units_is_refused() -> None:
    with pytest.raises(ValueError):
        delay_routing_key(-1, "ledger.main", 4)


def test_no_work_queue_name_is_a_dot_suffix_of_another() -> None:
    assert suffix_clashes(WORK_QUEUES) == []


def test_a_suffix_clash_is_found_and_would_deliver_delayed_messages_twice() -> None:
    # given a queue whose name ends with another queue's name
    settings = Settings(_env_file=None, delay_levels=4, delay_unit_ms=10)
    clashing = [Subscription("ledger", "main", ()), Subscription("audit", "ledger.main", ())]
    queues = [sub.queue for sub in clashing]

    # then the check names the pair
    assert suffix_clashes(queues) == [("audit.ledger.main", "ledger.main")]
    # because a message delayed for the longer name also reaches the shorter one
    broker = BrokerModel(build_plan(settings, clashing))
    exchange, routing_key = delay_target(0, "audit.ledger.main", 10, 4)
    assert broker.route(exchange, routing_key) == {"audit.ledger.main", "ledger.main"}


def test_queues_that_only_share_their_last_word_do_not_share_delays() -> None:
    # given two queues with the same group name in different services
    settings = Settings(_env_file=None, delay_levels=4, delay_unit_ms=10)
    twins = [Subscription("ledger", "status", ()), Subscription("gateway", "status", ())]
    broker = BrokerModel(build_plan(settings, twins))

    assert suffix_clashes([sub.queue for sub in twins]) == []
    for sub in twins:
        assert deliver_later(broker, 50, sub.queue, settings).destination == sub.queue
