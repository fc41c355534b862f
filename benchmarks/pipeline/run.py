"""One `warren bench pipeline` run: start both pipelines, interleave their rounds, gather figures.

The runtime's steps and the raw twin's each run in their own vhost; every step of the runtime
has its own fresh database. Both are driven from here the same way (`driver.py`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aio_pika
from pydantic import SecretStr
from rich.console import Console

from benchmarks.broker import broker_versions
from benchmarks.machine import describe
from benchmarks.phases import CpuLedger, Say, interleaved
from benchmarks.pipeline import raw
from benchmarks.pipeline.contracts import CONTRACTS, PAYLOAD, PipelineFinished, RunStep1
from benchmarks.pipeline.driver import First, PipelineDriver
from benchmarks.pipeline.plan import PipelinePlan
from benchmarks.pipeline.report import PipelineResult, format_report, to_json
from benchmarks.pipeline.service import SERVICES
from benchmarks.processes import Children
from benchmarks.procfs import peak_rss_mb
from benchmarks.resources import Resources
from benchmarks.stats import Comparison
from benchmarks.system import free_port, warren_env
from benchmarks.timeline import Timeline
from config.settings import Settings
from contracts.envelope import Envelope
from contracts.registry import Registry, default_registry
from contracts.topology import Subscription, exchange_for, routing_key_for
from outbox.amqp import from_wire
from workers.ops.readiness import consumer_probe
from workers.runtime.topology import apply_plan, build_plan

RUNTIME, RAW = "warren", "baseline"  # the timeline's (and the plot's) names of the two sides
LABELS = {RUNTIME: "runtime pipelines/s", RAW: "raw aio-pika pipelines/s"}
# The driver's own queue of finishing messages, declared like any subscriber's.
FINISHED = Subscription("pipeline_bench", "finished", (PipelineFinished.NAME,))
READY_TIMEOUT_S = 90.0


@dataclass
class PipelineStage:
    """What the rounds drive: the two drivers, the processes and their CPU ledger."""

    runtime: PipelineDriver
    raw: PipelineDriver
    children: Children
    cpu: CpuLedger = field(default_factory=CpuLedger)

    async def close(self) -> None:
        """Close the drivers' connections."""
        await self.runtime.close()
        await self.raw.close()


def _runtime_first(registry: Registry) -> First:
    def first(pipeline_id: str) -> tuple[str, str, aio_pika.Message]:
        step = RunStep1(pipeline_id=pipeline_id, payload=PAYLOAD)
        wire = registry.encode(Envelope(step, correlation_id=pipeline_id))
        return exchange_for(RunStep1), routing_key_for(RunStep1), from_wire(wire, "bench")

    return first


def _raw_first(pipeline_id: str) -> tuple[str, str, aio_pika.Message]:
    key, message = raw.hop(RunStep1.type_name(), pipeline_id)
    return raw.EXCHANGE, key, message


async def _declare(url: str, settings: Settings, registry: Registry) -> None:
    """Both vhosts' topology, before any process consumes from it."""
    connection = await aio_pika.connect(url)
    try:
        subscriptions = [*(s.subscription for s in SERVICES), FINISHED]
        await apply_plan(connection, build_plan(settings, subscriptions, registry))
    finally:
        await connection.close()


async def _declare_raw(url: str, settings: Settings) -> None:
    connection = await aio_pika.connect(url)
    try:
        await raw.declare(await connection.channel(), settings)
    finally:
        await connection.close()


async def start(plan: PipelinePlan, res: Resources, timeline: Timeline, say: Say) -> PipelineStage:
    """Fresh vhosts and databases; start every step; wait until all of them consume."""
    started, settings = time.monotonic(), res.settings
    registry = default_registry().extended(CONTRACTS)
    runtime_url, raw_url = await res.vhost("pipeline"), await res.vhost("pipeline-raw")
    await _declare(runtime_url, settings, registry)
    await _declare_raw(raw_url, settings)
    db_urls = {s.name: await res.databases.url(s.name) for s in SERVICES}
    env = warren_env(runtime_url, db_urls, res.run_dir, gateway_port=free_port())  # unused
    probing = settings.model_copy(update={"broker_url": SecretStr(runtime_url)})
    for declared in SERVICES:
        probe = consumer_probe(probing, declared.queue, f"{declared.name}-worker")
        res.children.spawn(declared.name, "benchmarks.pipeline", [declared.name], env, probe=probe)
    raw_env = {"WARREN_BENCH_AMQP_URL": raw_url, "WARREN_BENCH_PREFETCH": str(settings.prefetch)}
    raw_probing = settings.model_copy(update={"broker_url": SecretStr(raw_url)})
    for role in raw.ROLES:
        probe = consumer_probe(raw_probing, raw.queue_name(role), f"raw-{role}")
        res.children.spawn(f"raw-{role}", "benchmarks.pipeline.raw", [role], raw_env, probe=probe)
    say(f"started {len(res.children.all)} processes; waiting until each one is ready")
    await res.children.ready(READY_TIMEOUT_S)
    say(f"ready after {time.monotonic() - started:.1f}s")
    stage = PipelineStage(
        PipelineDriver(RUNTIME, runtime_url, _runtime_first(registry), FINISHED.queue, timeline),
        PipelineDriver(RAW, raw_url, _raw_first, raw.queue_name(raw.DONE), timeline),
        res.children,
    )
    await stage.runtime.start(settings.prefetch)
    await stage.raw.start(settings.prefetch)
    return stage


async def run(plan: PipelinePlan, res: Resources, timeline: Timeline, say: Say) -> PipelineResult:
    """Start, run the interleaved rounds, describe; the caller releases the processes."""
    stage = await start(plan, res, timeline, say)
    try:
        loops = {RAW: stage.raw.closed_loop, RUNTIME: stage.runtime.closed_loop}

        def pair(i: int, rate: dict[str, float]) -> None:
            say(f"round {i}: raw {rate[RAW]:.1f}/s, runtime {rate[RUNTIME]:.1f}/s")

        rates, _ = await interleaved(plan, stage.children, stage.cpu, timeline, loops, pair)
        broker, postgres = await broker_versions(res.settings), await res.databases.server_version()
    finally:
        await stage.close()
    steps = tuple(s.name for s in SERVICES)
    return PipelineResult(
        pipelines=Comparison(tuple(rates[RUNTIME]), tuple(rates[RAW])),
        cpu_ms={
            "runtime": stage.cpu.ms_per_item(RUNTIME, (*steps, "bench")),
            "raw": stage.cpu.ms_per_item(RAW, (*(f"raw-{r}" for r in raw.ROLES), "bench")),
        },
        failures={"runtime": stage.runtime.failures, "raw": stage.raw.failures},
        rss_mb=res.children.peak_rss_mb() | {"bench": peak_rss_mb() or 0.0},
        machine=describe(broker, postgres),
        run={
            "quick": plan.quick,
            "db": plan.db,
            "round_s": plan.round_s,
            "pairs": plan.pairs,
            "in_flight": plan.clients,
            "prefetch": res.settings.prefetch,
            "handler_batch_size": res.settings.handler_batch_size,
            "queue_type": res.settings.queue_type,
        },
    )


def write(plan: PipelinePlan, result: PipelineResult, timeline: Timeline, console: Console) -> None:
    """Print the figures, save the plot, write the JSON if asked."""
    from benchmarks.plot import save_plot

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    png = plan.out_dir / f"bench-pipeline-{stamp}.png"
    title = f"warren bench pipeline {'--quick ' if plan.quick else ''}({plan.db}, {stamp} UTC)"
    save_plot(timeline, png, title, {}, LABELS)
    console.rule("[bold]warren bench pipeline")
    for line in format_report(result):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"plot: {png}")
    if plan.json_path is not None:
        plan.json_path.parent.mkdir(parents=True, exist_ok=True)
        plan.json_path.write_text(json.dumps(to_json(result), indent=2) + "\n")
        console.print(f"figures: {plan.json_path}")
