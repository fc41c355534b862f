"""A tiny model of RabbitMQ routing over a `TopologyPlan`, so routing is testable without a broker.

Topic exchanges: a binding key is words separated by dots; `*` matches exactly one word, `#`
zero or more. Direct exchanges match the key exactly; fanout exchanges match every key.
Exchange-to-exchange bindings are followed; a queue reached along several paths receives one
copy, as in RabbitMQ. An exchange none of whose bindings match passes the message to its
`alternate-exchange`, if it has one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from workers.runtime.topology import BindingSpec, TopologyPlan


def topic_matches(binding_key: str, routing_key: str) -> bool:
    """Whether a topic binding key matches a routing key, by RabbitMQ's rules."""
    return _words_match(tuple(binding_key.split(".")), tuple(routing_key.split(".")))


@cache
def _words_match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_words_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return head in ("*", words[0]) and _words_match(rest, words[1:])


@dataclass
class BrokerModel:
    """Where a message published to an exchange with a routing key ends up, per the plan."""

    plan: TopologyPlan
    _types: dict[str, str] = field(init=False)
    _alternates: dict[str, str] = field(init=False)
    _bindings: dict[str, list[BindingSpec]] = field(init=False)
    queue_arguments: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self._types = {spec.name: spec.type for spec in self.plan.exchanges}
        self._alternates = {
            spec.name: spec.arguments["alternate-exchange"]
            for spec in self.plan.exchanges
            if "alternate-exchange" in spec.arguments
        }
        self._bindings = defaultdict(list)
        for binding in self.plan.bindings:
            self._bindings[binding.source].append(binding)
        self.queue_arguments = {spec.name: spec.arguments for spec in self.plan.queues}

    def route(self, exchange: str, routing_key: str) -> set[str]:
        """The queues a message published to `exchange` with `routing_key` is delivered to."""
        queues: set[str] = set()
        seen: set[str] = set()
        pending = [exchange]
        while pending:
            source = pending.pop()
            if source in seen:
                continue
            seen.add(source)
            if source not in self._types:
                raise LookupError(f"exchange {source!r} is not declared by the plan")
            matching = [
                b
                for b in self._bindings[source]
                if self._matches(source, b.routing_key, routing_key)
            ]
            if not matching and source in self._alternates:
                pending.append(self._alternates[source])
            for binding in matching:
                if binding.destination_type == "exchange":
                    pending.append(binding.destination)
                else:
                    queues.add(binding.destination)
        return queues

    def _matches(self, exchange: str, binding_key: str, routing_key: str) -> bool:
        if self._types[exchange] == "fanout":
            return True
        if self._types[exchange] == "direct":
            return binding_key == routing_key
        return topic_matches(binding_key, routing_key)
