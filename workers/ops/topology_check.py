"""`warren topology check`: compare the live broker with the plan and explain each difference."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from config.settings import Settings
from contracts import topology as names
from workers.ops.management import Management
from workers.runtime.topology import ExchangeSpec, QueueSpec, TopologyPlan

REPLICAS = "x-quorum-initial-group-size"
REAPPLY = "delete the queue once it is empty, then run `warren topology apply`"
REDECLARE_EXCHANGE = "delete the exchange, then run `warren topology apply`"


@dataclass(frozen=True, slots=True)
class Difference:
    """One way the broker differs from the plan, why it matters and what to do."""

    subject: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem}\n    fix: {self.fix}"


def _effective(queue: dict[str, Any], key: str) -> Any:
    """An argument's value, from the queue's x-arguments or else from its policy."""
    value = (queue.get("arguments") or {}).get(key)
    if value is None:
        value = (queue.get("effective_policy_definition") or {}).get(key.removeprefix("x-"))
    return value


def check_queue(
    spec: QueueSpec, live: dict[str, Any] | None, settings: Settings, cluster_size: int = 1
) -> list[Difference]:
    """The differences between one planned queue and the live one."""
    name = f"queue {spec.name}"
    if live is None:
        return [Difference(name, "is missing", "run `warren topology apply`")]
    found: list[Difference] = []
    wanted_type = spec.arguments.get("x-queue-type", "classic")
    if live.get("type") != wanted_type:
        found.append(
            Difference(name, f"is a {live.get('type')} queue, the plan says {wanted_type}", REAPPLY)
        )
    found += _check_dead_letter_exchange(name, spec, _effective(live, "x-dead-letter-exchange"))
    if "x-delivery-limit" in spec.arguments:
        found += _check_delivery_limit(name, _effective(live, "x-delivery-limit"), settings)
    if REPLICAS in spec.arguments and live.get("type") == "quorum":
        found += _check_replicas(name, int(spec.arguments[REPLICAS]), live, cluster_size)
    for key, wanted in spec.arguments.items():
        if key in {"x-queue-type", "x-dead-letter-exchange", "x-delivery-limit", REPLICAS}:
            continue
        actual = _effective(live, key)
        if actual != wanted:
            found.append(
                Difference(name, f"has {key}={actual!r}, the plan says {wanted!r}", REAPPLY)
            )
    return found


def _check_replicas(
    name: str, asked: int, live: dict[str, Any], cluster_size: int
) -> list[Difference]:
    # The broker places min(asked, nodes) replicas; fewer means a node loss can stop the queue.
    members = live.get("members") or []
    wanted = min(asked, cluster_size)
    if len(members) >= wanted:
        return []
    problem = (
        f"has {len(members)} replica(s) ({', '.join(members) or 'none'}), {wanted} asked "
        f"on this {cluster_size}-node cluster: losing a node can stop the queue"
    )
    fix = (
        "add replicas: `rabbitmq-queues grow <node> all` once the node runs, or "
        f"`rabbitmq-queues add_member -p <vhost> {name.removeprefix('queue ')} <node>`"
    )
    return [Difference(name, problem, fix)]


def _check_dead_letter_exchange(name: str, spec: QueueSpec, actual: Any) -> list[Difference]:
    wanted = spec.arguments.get("x-dead-letter-exchange")
    if wanted is None or actual == wanted:
        return []
    fix = f"{REAPPLY}, or set a policy with dead-letter-exchange={wanted}"
    if not actual:
        problem = (
            "has no dead-letter exchange: a message rejected or over its delivery-limit "
            "is dropped instead of reaching its dead-letter queue"
        )
    else:
        problem = f"dead-letters to {actual!r}, the plan says {wanted!r}: its messages go astray"
    return [Difference(name, problem, fix)]


def _check_delivery_limit(name: str, limit: Any, settings: Settings) -> list[Difference]:
    budget = settings.delayed_retries + 1
    if limit is None:
        return [
            Difference(
                name,
                "has no delivery-limit: a message that crashes its worker is redelivered forever "
                "(RabbitMQ 4 silently drops it after 20 deliveries)",
                f"{REAPPLY}, or set a policy with delivery-limit={settings.delivery_limit}",
            )
        ]
    if int(limit) < budget:
        return [
            Difference(
                name,
                f"has delivery-limit {limit}, lower than the retry budget of {budget} attempts: "
                "a message could be dead-lettered as a crash loop before its retries are spent",
                f"raise the limit to at least {budget} (WARREN_DELIVERY_LIMIT, then {REAPPLY})",
            )
        ]
    return []


def check_exchange(
    spec: ExchangeSpec, live: dict[str, Any] | None, policies: dict[str, Any], vhost: str
) -> list[Difference]:
    """The differences between one planned exchange and the live one (`policies` by name)."""
    name = f"exchange {spec.name}"
    if live is None:
        return [Difference(name, "is missing", "run `warren topology apply`")]
    if live["type"] != spec.type:
        problem = f"is {live['type']}, the plan says {spec.type}"
        return [Difference(name, problem, REDECLARE_EXCHANGE)]
    policy = (policies.get(live.get("policy") or "") or {}).get("definition") or {}
    found = []
    for key, wanted in spec.arguments.items():
        actual = (live.get("arguments") or {}).get(key, policy.get(key))
        if actual == wanted:
            continue
        if key == "alternate-exchange":
            found.append(_alternate_exchange_difference(name, actual, wanted, vhost))
        else:
            problem = f"has {key}={actual!r}, the plan says {wanted!r}"
            found.append(Difference(name, problem, REDECLARE_EXCHANGE))
    return found


def _alternate_exchange_difference(name: str, actual: Any, wanted: str, vhost: str) -> Difference:
    consequence = (
        "an event no queue subscribes to is returned to the relay and retried "
        f"instead of parked in {names.UNROUTED_QUEUE}"
    )
    problem = f"has no alternate exchange: {consequence}"
    if actual:
        problem = f"has alternate exchange {actual!r}, the plan says {wanted!r}: {consequence}"
    definition = json.dumps({"alternate-exchange": wanted}, separators=(",", ":"))
    fix = (
        f"rabbitmqctl set_policy -p {vhost} --apply-to exchanges {names.UNROUTED_POLICY} "
        f"'{names.event_exchange_pattern()}' '{definition}' (no downtime), or delete the "
        "exchange and run `warren topology apply`"
    )
    return Difference(name, problem, fix)


async def check(
    plan: TopologyPlan, settings: Settings, vhost: str | None = None
) -> list[Difference]:
    """Every difference between the live vhost and the plan."""
    async with Management(settings, vhost) as api:
        exchanges = {e["name"]: e for e in await api.exchanges()}
        policies = {p["name"]: p for p in await api.policies()}
        queues = {q["name"]: q for q in await api.queues()}
        cluster_size = len(await api.nodes())
        bindings = {
            (b["source"], b["destination"], b["destination_type"], b["routing_key"])
            for b in await api.bindings()
        }
        vhost = api.vhost
    found: list[Difference] = []
    for spec in plan.exchanges:
        found += check_exchange(spec, exchanges.get(spec.name), policies, vhost)
    for queue in plan.queues:
        found += check_queue(queue, queues.get(queue.name), settings, cluster_size)
    for b in plan.bindings:
        if (b.source, b.destination, b.destination_type, b.routing_key) not in bindings:
            found.append(
                Difference(
                    f"binding {b.source} -> {b.destination} ({b.routing_key})",
                    "is missing: messages with that routing key do not reach their queue",
                    "run `warren topology apply`",
                )
            )
    return found
