"""Prometheus metrics of the consumer runtime."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HANDLED = Counter(
    "warren_messages_handled_total",
    "Messages the runtime finished with, by outcome.",
    ["queue", "type", "outcome"],
)
DUPLICATES = Counter(
    "warren_duplicates_absorbed_total",
    "Redelivered or republished messages the inbox recognised and acknowledged unchanged.",
    ["queue"],
)
RETRIES = Counter(
    "warren_retries_total",
    "Retries scheduled, immediate (in-process) or delayed (through the delay levels).",
    ["queue", "kind"],
)
DEAD_LETTERED = Counter(
    "warren_dead_lettered_total",
    "Messages moved to a dead-letter queue, by reason.",
    ["queue", "reason"],
)
HANDLER_SECONDS = Histogram(
    "warren_handler_seconds",
    "Time to handle one message: inbox, handler and commit.",
    ["queue", "type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "warren_handler_batch_size",
    "Messages handled together in one transaction (batches of two or more).",
    ["queue"],
    buckets=(2, 4, 8, 16, 32, 64, 128),
)
PAUSED = Gauge(
    "warren_consumer_paused",
    "1 while the consumer is paused by an infrastructure outage (database or broker down).",
    ["queue"],
)
PAUSES = Counter(
    "warren_consumer_pauses_total",
    "Times the consumer paused on an infrastructure outage.",
    ["queue"],
)
TASK_UP = Gauge(
    "warren_background_task_up",
    "1 while a background task (a relay, a projection, housekeeping) runs; 0 while it restarts.",
    ["service", "task"],
)
TASK_RESTARTS = Counter(
    "warren_background_task_restarts_total",
    "Times a background task failed and was restarted with backoff.",
    ["service", "task", "error"],
)
