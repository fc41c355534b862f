"""`warren topology check` explains how a live queue or exchange differs from the plan.

The live queues are shaped like the management API's `/api/queues/{vhost}/{name}` answer, the
exchanges like its `/api/exchanges/{vhost}/{name}` answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from config.settings import Settings
from contracts.inventory import StockReserved
from contracts.orders import OrderStatusChanged
from contracts.payments import PaymentCaptured
from contracts.topology import (
    DEAD_LETTER_EXCHANGE,
    UNROUTED_EXCHANGE,
    UNROUTED_POLICY,
    UNROUTED_QUEUE,
    delay_exchange,
    delay_queue,
    event_exchange_pattern,
    exchange_for,
)
from workers.ops.topology_check import Difference, check_exchange, check_queue
from workers.runtime.discovery import workers
from workers.runtime.topology import ExchangeSpec, QueueSpec, build_plan

QUEUE = workers()[0].queue  # any work queue: every one is planned by the same rule


@pytest.fixture(scope="module")
def settings() -> Settings:
    # retry budget: 5 delayed retries + the first attempt = 6 deliveries
    return Settings(_env_file=None, delayed_retries=5, delivery_limit=10)


@pytest.fixture(scope="module")
def specs(settings: Settings) -> dict[str, QueueSpec]:
    return {spec.name: spec for spec in build_plan(settings).queues}


def live_queue(
    spec: QueueSpec,
    *,
    drop: tuple[str, ...] = (),
    policy: dict[str, Any] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """The management API's view of a queue declared from `spec`, then altered."""
    arguments = {k: v for k, v in spec.arguments.items() if k not in drop}
    arguments |= {f"x-{k.replace('_', '-')}": v for k, v in changes.items()}
    return {
        "name": spec.name,
        "vhost": "/",
        "type": arguments.get("x-queue-type", "classic"),
        "durable": True,
        "arguments": arguments,
        "policy": "ops" if policy else None,
        "effective_policy_definition": policy or {},
    }


def problems(found: list[Difference]) -> str:
    return "\n".join(str(d) for d in found)


def test_a_queue_declared_from_the_plan_has_no_differences(
    specs: dict[str, QueueSpec], settings: Settings
) -> None:
    for spec in specs.values():
        assert check_queue(spec, live_queue(spec), settings) == [], spec.name


def test_a_missing_queue_is_reported_with_how_to_create_it(
    specs: dict[str, QueueSpec], settings: Settings
) -> None:
    found = check_queue(specs[QUEUE], None, settings)

    assert len(found) == 1
    assert found[0].subject == f"queue {QUEUE}"
    assert "missing" in found[0].problem
    assert "warren topology apply" in found[0].fix


def test_a_classic_queue_where_the_plan_wants_quorum_is_reported(
    specs: dict[str, QueueSpec], settings: Settings
) -> None:
    live = live_queue(specs[QUEUE])
    live["type"] = "classic"

    found = check_queue(specs[QUEUE], live, settings)

    assert len(found) == 1
    assert "is a classic queue, the plan says quorum" in found[0].problem
    assert "delete the queue" in found[0].fix


def test_a_queue_without_dead_letter_exchange_is_reported_as_dropping_messages(
    specs: dict[str, QueueSpec], settings: Settings
) -> None:
    live = live_queue(specs[QUEUE], drop=("x-dead-letter-exchange",))

    found = check_queue(specs[QUEUE], live, settings)

    assert len(found) == 1, problems(found)
    assert "no dead-letter exchange" in found[0].problem
    assert "dropped" in found[0].problem
    assert f"dead-letter-exchange={DEAD_LETTER_EXCHANGE}" in found[0].fix


def test_a_dead_letter_exchange_set_by_policy_counts(
    specs: dict[str, QueueSpec], settings: Settings
) -> None:
    # given a queue declared without the argument but covered by an operator policy
    live = live_queue(
        specs[QUEUE],
        drop=("x-dead-letter-exchange",),
        policy={"dead-letter-exchange": DEAD_LETTER_EXCHANGE},
    )

    assert check_queue(specs[QUEUE], live, settings) == []


@pytest.mark.parametrize(
    ("queue", "wrong_exchange"),
    [(QUEUE, "legacy.dlx"), (delay_queue(5), delay_exchange(3))],
)
def test_a_dead_letter_exchange_other_than_the_plans_is_reported(
    specs: dict[str, QueueSpec], settings: Settings, queue: str, wrong_exchange: str
) -> None:
    # given a work queue dead-lettering elsewhere than warren.dlx (its DLQ never sees a message),
    # or a delay level expiring two levels down (every delay through it comes out wrong)
    live = live_queue(specs[queue], dead_letter_exchange=wrong_exchange)

    found = check_queue(specs[queue], live, settings)

    assert any(wrong_exchange in d.problem for d in found), problems(found)


def test_a_quorum_queue_without_delivery_limit_is_reported_as_looping_forever(
    specs: dict[str, QueueSpec], settings: Settings
) -> None:
    live = live_queue(specs[QUEUE], drop=("x-delivery-limit",))

    found = check_queue(specs[QUEUE], live, settings)

    assert len(found) == 1, problems(found)
    assert "no delivery-limit" in found[0].problem
    assert f"delivery-limit={settings.delivery_limit}" in found[0].fix


def test_a_delivery_limit_set_by_policy_counts(
    specs: dict[str, QueueSpec], settings: Settings
) -> None:
    live = live_queue(specs[QUEUE], drop=("x-delivery-limit",), policy={"delivery-limit": 8})

    assert check_queue(specs[QUEUE], live, settings) == []


@pytest.mark.parametrize("limit", [1, 5])
def test_a_delivery_limit_below_the_retry_budget_is_reported(
    specs: dict[str, QueueSpec], settings: Settings, limit: int
) -> None:
    # given a limit that would call a message a crash loop before its 6 attempts are spent
    live = live_queue(specs[QUEUE], delivery_limit=limit)

    found = check_queue(specs[QUEUE], live, settings)

    assert len(found) == 1, problems(found)
    assert f"delivery-limit {limit}, lower than the retry budget of 6" in found[0].problem
    assert "at least 6" in found[0].fix
    assert "WARREN_DELIVERY_LIMIT" in found[0].fix


@pytest.mark.parametrize("limit", [6, 10, 50])
def test_a_delivery_limit_that_covers_the_retry_budget_is_accepted(
    specs: dict[str, QueueSpec], settings: Settings, limit: int
) -> None:
    live = live_queue(specs[QUEUE], delivery_limit=limit)

    assert check_queue(specs[QUEUE], live, settings) == []


def test_a_low_delivery_limit_from_a_policy_is_reported_too(
    specs: dict[str, QueueSpec], settings: Settings
) -> None:
    live = live_queue(specs[QUEUE], drop=("x-delivery-limit",), policy={"delivery-limit": 3})

    found = check_queue(specs[QUEUE], live, settings)

    assert [d.problem for d in found if "lower than the retry budget" in d.problem]


@pytest.mark.parametrize(
    ("queue", "key", "actual"),
    [
        (QUEUE, "x-overflow", "drop-head"),
        (QUEUE, "x-dead-letter-routing-key", QUEUE),
        (QUEUE, "x-dead-letter-strategy", "at-most-once"),
        (delay_queue(3), "x-message-ttl", 100),
    ],
)
def test_any_other_argument_that_differs_is_named_with_both_values(
    specs: dict[str, QueueSpec], settings: Settings, queue: str, key: str, actual: Any
) -> None:
    spec = specs[queue]
    live = live_queue(spec)
    live["arguments"][key] = actual

    found = check_queue(spec, live, settings)

    assert len(found) == 1, problems(found)
    assert found[0].problem == f"has {key}={actual!r}, the plan says {spec.arguments[key]!r}"


def test_an_argument_the_live_queue_lacks_is_reported_as_none(
    specs: dict[str, QueueSpec], settings: Settings
) -> None:
    live = live_queue(specs[QUEUE], drop=("x-overflow",))

    found = check_queue(specs[QUEUE], live, settings)

    assert [d.problem for d in found] == ["has x-overflow=None, the plan says 'reject-publish'"]


def test_several_differences_are_all_reported(
    specs: dict[str, QueueSpec], settings: Settings
) -> None:
    live = live_queue(specs[QUEUE], drop=("x-dead-letter-exchange", "x-delivery-limit"))
    live["type"] = "classic"

    found = check_queue(specs[QUEUE], live, settings)

    assert len(found) == 3, problems(found)


# Exchanges: the event exchanges' alternate exchange ------------------------------------------


def live_exchange(
    spec: ExchangeSpec, *, policy: str | None = None, **arguments: Any
) -> dict[str, Any]:
    """The management API's view of an exchange declared with `arguments` (not the plan's)."""
    return {"name": spec.name, "type": spec.type, "arguments": arguments, "policy": policy}


@pytest.fixture(scope="module")
def exchanges(settings: Settings) -> dict[str, ExchangeSpec]:
    return {spec.name: spec for spec in build_plan(settings).exchanges}


def test_an_exchange_declared_from_the_plan_has_no_differences(
    exchanges: dict[str, ExchangeSpec],
) -> None:
    for spec in exchanges.values():
        live = live_exchange(spec, **spec.arguments)
        assert check_exchange(spec, live, {}, "warren") == [], spec.name


def test_an_event_exchange_without_alternate_exchange_is_reported_with_a_policy_fix(
    exchanges: dict[str, ExchangeSpec],
) -> None:
    # given an event exchange declared before Warren parked unroutable events
    spec = exchanges[exchange_for(OrderStatusChanged)]

    found = check_exchange(spec, live_exchange(spec), {}, "warren")

    assert len(found) == 1, problems(found)
    assert found[0].subject == f"exchange {exchange_for(OrderStatusChanged)}"
    assert "has no alternate exchange" in found[0].problem
    assert UNROUTED_QUEUE in found[0].problem
    assert "rabbitmqctl set_policy -p warren --apply-to exchanges" in found[0].fix
    assert event_exchange_pattern() in found[0].fix
    assert f'{{"alternate-exchange":"{UNROUTED_EXCHANGE}"}}' in found[0].fix


def test_an_alternate_exchange_set_by_policy_counts(exchanges: dict[str, ExchangeSpec]) -> None:
    spec = exchanges[exchange_for(PaymentCaptured)]
    policies = {
        UNROUTED_POLICY: {
            "name": UNROUTED_POLICY,
            "definition": {"alternate-exchange": UNROUTED_EXCHANGE},
        }
    }

    live = live_exchange(spec, policy=UNROUTED_POLICY)

    assert check_exchange(spec, live, policies, "warren") == []
    # and a policy that sets something else does not
    other = {UNROUTED_POLICY: {"definition": {"federation-upstream-set": "all"}}}
    assert len(check_exchange(spec, live, other, "warren")) == 1


def test_an_alternate_exchange_other_than_the_plans_is_named(
    exchanges: dict[str, ExchangeSpec],
) -> None:
    spec = exchanges[exchange_for(StockReserved)]
    live = live_exchange(spec, **{"alternate-exchange": "legacy.unrouted"})

    found = check_exchange(spec, live, {}, "warren")

    assert len(found) == 1, problems(found)
    assert "'legacy.unrouted', the plan says 'warren.unrouted'" in found[0].problem


def test_a_missing_or_retyped_exchange_is_reported(exchanges: dict[str, ExchangeSpec]) -> None:
    spec = exchanges[UNROUTED_EXCHANGE]

    (missing,) = check_exchange(spec, None, {}, "warren")
    (retyped,) = check_exchange(spec, live_exchange(spec) | {"type": "topic"}, {}, "warren")

    assert missing.problem == "is missing"
    assert retyped.problem == "is topic, the plan says fanout"
