"""Prometheus metrics of the outbox relay and of broker connections."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_PENDING = Gauge(
    "warren_outbox_pending_messages", "Outbox rows not yet published.", ["service"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "warren_outbox_oldest_pending_age_seconds",
    "Age of the oldest unpublished outbox row (0 when none).",
    ["service"],
)
OUTBOX_PUBLISHED = Counter(
    "warren_outbox_published_total", "Outbox rows published and confirmed.", ["service"]
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "warren_outbox_publish_failures_total",
    "Outbox publishes that failed and will be retried.",
    ["service", "error"],
)
OUTBOX_UNROUTABLE = Counter(
    "warren_outbox_unroutable_total",
    "Outbox publishes the broker returned because no queue is bound; the row is retried.",
    ["service", "exchange"],
)
OUTBOX_PUBLISH_SECONDS = Histogram(
    "warren_outbox_publish_seconds",
    "From publish to broker confirm, per message.",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_DELETED = Counter(
    "warren_retention_deleted_rows_total",
    "Published outbox rows and old inbox rows deleted by retention.",
    ["service", "table"],
)
BROKER_CONNECTED = Gauge(
    "warren_broker_connected",
    "1 while the role's broker connection is up, 0 while it is reconnecting.",
    ["role"],
)
BROKER_RECONNECTS = Counter(
    "warren_broker_reconnects_total",
    "Broker connections regained after a loss (possibly on another cluster node).",
    ["role"],
)
BROKER_PAUSE_SECONDS = Histogram(
    "warren_broker_pause_seconds",
    "From losing the broker connection to having it back.",
    ["role"],
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
RELAY_PAUSED = Gauge(
    "warren_relay_paused",
    "1 while the relay cannot reach its database or the broker and backs off.",
    ["service"],
)
