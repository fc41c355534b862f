"""The composition root of one pipeline step."""

from __future__ import annotations

from benchmarks.pipeline.contracts import CONTRACTS
from benchmarks.pipeline.handlers import record_step
from benchmarks.pipeline.service import step_service
from benchmarks.pipeline.tables import PIPELINE_TABLES
from config.settings import Settings
from contracts.registry import default_registry
from workers.runtime.service import ServiceSpec


def bootstrap(settings: Settings, name: str) -> ServiceSpec:
    """The worker of step `name`: its queue, its handler, its table, its contracts."""
    declared = step_service(name)
    return ServiceSpec(
        name=declared.name,
        subscription=declared.subscription,
        handlers={model.NAME: record_step for model in declared.consumes},
        tables=PIPELINE_TABLES,
        registry=default_registry().extended(CONTRACTS),
    )
