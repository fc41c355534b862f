"""`warren bench pipeline`: its command line, its service kept out of the product, its twin.

The run itself needs a broker (it is a benchmark, not a test); what is checked here is what
decides its figures' meaning: the options reach the plan, the pipeline service is invisible to
discovery and the product's topology, both pipelines move the same messages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from typer.testing import CliRunner

from benchmarks import main as bench_main
from benchmarks.pipeline import raw
from benchmarks.pipeline.bootstrap import bootstrap
from benchmarks.pipeline.contracts import (
    CONTRACTS,
    PAYLOAD,
    PipelineFinished,
    RunStep1,
    RunStep2,
    RunStep4,
)
from benchmarks.pipeline.plan import PipelinePlan
from benchmarks.pipeline.service import SERVICES
from benchmarks.pipeline.tables import PIPELINE_TABLES, StepRecord
from benchmarks.plan import BenchPlan
from config.settings import Settings
from contracts.envelope import Envelope
from contracts.registry import default_registry
from outbox.db import create_tables, session_factory
from outbox.tables import OutboxMessage
from outbox.unit_of_work import UnitOfWork
from workers.commands import app
from workers.runtime.asyncapi import asyncapi_document
from workers.runtime.discovery import services
from workers.runtime.edge import bound_contracts
from workers.runtime.topology import build_plan

STEP_NAMES = {s.name for s in SERVICES}
PIPELINE_NAMES = {m.NAME for m in CONTRACTS}


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The plans the commands would run, instead of running them."""
    seen: list[Any] = []
    monkeypatch.setattr(bench_main, "main", lambda plan: seen.append(plan) or 0)
    monkeypatch.setattr(bench_main, "execute", lambda _t, plan, *_: seen.append(plan) or 0)
    return seen


def test_plain_bench_still_runs_the_full_bench_with_its_options(plans: list[Any]) -> None:
    # when `warren bench` is given its own options, as before the subcommand existed
    result = CliRunner().invoke(app, ["bench", "--quick", "--db", "sqlite-aiosqlite"])

    # then the full bench runs with them
    assert result.exit_code == 0, result.output
    [plan] = plans
    assert isinstance(plan, BenchPlan)
    assert (plan.quick, plan.db, plan.round_s) == (True, "sqlite-aiosqlite", 5.0)


def test_bench_pipeline_parses_its_options(plans: list[Any], tmp_path: Path) -> None:
    # when the pipeline bench is asked for PostgreSQL, short rounds, 8 in flight and JSON
    out = tmp_path / "figures.json"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "pipeline",
            "--quick",
            "--db",
            "postgres",
            "--in-flight",
            "8",
            "--json",
            str(out),
        ],
    )

    # then its plan says so, and the full bench did not run
    assert result.exit_code == 0, result.output
    [plan] = plans
    assert isinstance(plan, PipelinePlan)
    assert (plan.quick, plan.db, plan.clients, plan.json_path) == (True, "postgres", 8, out)
    assert plan.round_s == 5.0 and plan.pairs >= 2


def test_bench_pipeline_refuses_a_database_it_does_not_measure(plans: list[Any]) -> None:
    result = CliRunner().invoke(app, ["bench", "pipeline", "--db", "mysql"])

    assert result.exit_code != 0
    assert plans == []


def test_the_pipeline_service_is_not_a_product_service() -> None:
    # given the pipeline's four step services, declared under benchmarks/
    # then discovery (and so `warren up`, `generate`, `verify`, the harness) does not find them
    assert STEP_NAMES.isdisjoint({s.name for s in services()})
    # nor does the product's topology, contract registry or AsyncAPI document know them
    plan = build_plan(Settings(_env_file=None))
    assert not [q.name for q in plan.queues if q.name.startswith("pipeline_step")]
    assert not [e.name for e in plan.exchanges if e.name.startswith("pipeline.")]
    assert PIPELINE_NAMES.isdisjoint({m.NAME for m in default_registry()})
    assert "pipeline." not in json.dumps(asyncapi_document(default_registry()))


def test_a_step_worker_knows_its_contracts_through_its_own_registry() -> None:
    # given the spec a step's process runs
    spec = bootstrap(Settings(_env_file=None), "pipeline_step2")

    # then it consumes its step, binds its queue to its contract, and the plan declares both
    assert set(spec.handlers) == {RunStep2.NAME}
    assert spec.registry is not None
    assert bound_contracts(spec.subscription, spec.registry) == [RunStep2]
    plan = build_plan(Settings(_env_file=None), [spec.subscription], spec.registry)
    bindings = {(b.source, b.destination, b.routing_key) for b in plan.bindings}
    assert ("pipeline.commands", "pipeline_step2.hop", RunStep2.NAME) in bindings
    assert {"pipeline.commands", "pipeline.events"} <= {e.name for e in plan.exchanges}


def test_an_extended_registry_keeps_every_contract_and_upcaster() -> None:
    shared = default_registry()
    wider = shared.extended(CONTRACTS)

    assert set(shared) | set(CONTRACTS) == set(wider)
    assert PIPELINE_NAMES.isdisjoint({m.NAME for m in shared})  # the shared one is unchanged
    assert wider._upcasters == shared._upcasters


async def test_a_step_records_one_row_and_sends_the_next_step_in_one_transaction(
    engine: AsyncEngine,
) -> None:
    # given step 4's handler and a database with its table
    await create_tables(engine, PIPELINE_TABLES)
    spec = bootstrap(Settings(_env_file=None), "pipeline_step4")
    pipeline_id = uuid4()
    envelope = Envelope(RunStep4(pipeline_id=pipeline_id, payload=PAYLOAD))

    # when it handles a RunStep4 and commits
    async with UnitOfWork(session_factory(engine), registry=spec.registry) as uow:
        await spec.handlers[RunStep4.NAME](envelope, uow)
        await uow.commit()

    # then the step's row and the finishing event are both stored
    async with session_factory(engine)() as session:
        [row] = (await session.exec(select(StepRecord))).all()
        [out] = (await session.exec(select(OutboxMessage))).all()
    assert (row.pipeline_id, row.step) == (pipeline_id, RunStep4.NAME)
    assert (out.type, out.exchange) == (PipelineFinished.type_name(), "pipeline.events")
    assert json.loads(out.body)["pipeline_id"] == str(pipeline_id)


def test_the_raw_twin_moves_the_runtime_pipelines_messages() -> None:
    # when the raw twin's first message is followed step by step
    registry = default_registry().extended(CONTRACTS)
    pipeline_id = str(uuid4())
    key, message = raw.hop(RunStep1.type_name(), pipeline_id)
    route = [key]
    types = [message.type]
    while message.type != PipelineFinished.type_name():
        registry.decode_body(message.type, message.body)  # a valid runtime message each time
        [(key, message)] = raw.effects(message.type or "", json.loads(message.body))
        route.append(key)
        types.append(message.type)

    # then it visits every step once, in order, and ends in the driver's queue
    assert route == [*raw.ROLES, raw.DONE]
    assert types == [m.type_name() for m in CONTRACTS]
    assert message.delivery_mode == 2 and message.message_id
