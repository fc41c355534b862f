"""One `warren bench` run: start everything, run the phases, gather the figures."""

from __future__ import annotations

import time
from dataclasses import dataclass

from benchmarks import phases
from benchmarks.baseline import Baseline
from benchmarks.broker import broker_versions
from benchmarks.chain import MESSAGES_PER_CHAIN, ROLES
from benchmarks.gateway import GatewayBench
from benchmarks.load import OrderLoad
from benchmarks.machine import describe
from benchmarks.phases import Say, Stage
from benchmarks.plan import BenchPlan
from benchmarks.procfs import peak_rss_mb
from benchmarks.relay import RelayBench
from benchmarks.report import BenchResult
from benchmarks.resources import Resources
from benchmarks.stats import Comparison, Latency
from benchmarks.system import (
    WORKERS,
    bench_catalog,
    free_port,
    local_url,
    start_warren,
    warren_env,
)
from benchmarks.timeline import Timeline
from workers.runtime.discovery import services

WARREN_PROCESSES = ("gateway", *WORKERS, "bench")
BASELINE_PROCESSES = (*(f"baseline-{role}" for role in ROLES), "bench")
READY_TIMEOUT_S = 90.0


async def start(plan: BenchPlan, res: Resources, timeline: Timeline, say: Say) -> Stage:
    """Fresh vhosts and databases; start every process; wait until all of them consume."""
    started, settings = time.monotonic(), res.settings
    skus = bench_catalog(settings.catalog_path, res.run_dir / "catalog.json")
    system_url, port = await res.vhost("system"), free_port()
    db_urls = {
        service: await res.databases.url(service) for service in (s.name for s in services())
    }
    start_warren(res.children, warren_env(system_url, db_urls, res.run_dir, port), settings)
    baseline = Baseline(await res.vhost("baseline"), settings, timeline)
    await baseline.start(res.children)
    gateway = GatewayBench(res.children, res.run_dir, plan.http_connections, plan.http_processes)
    gateway.start(settings, await res.vhost("gateway"), await res.databases.url("lone_gateway"))
    relay = RelayBench(settings, await res.vhost("relay"), await res.databases.url("relay"))
    await relay.start()
    say(f"started {len(res.children.all)} processes; waiting until each one is ready")
    await res.children.ready(READY_TIMEOUT_S)
    say(f"ready after {time.monotonic() - started:.1f}s")
    load = OrderLoad(local_url(port), skus, timeline)
    return Stage(load, baseline, relay, gateway, res.children)


@dataclass(frozen=True)
class Measured:
    """What the phases measured."""

    saturation: Comparison
    saturation_latency: Latency
    rate: float
    tail: Latency
    achieved: float
    relay: Comparison
    gateway: Comparison
    server_cpu: dict[str, float]
    http_errors: int


async def measure(plan: BenchPlan, stage: Stage, timeline: Timeline, say: Say) -> Measured:
    """Every phase in turn: saturation, open loop, relay, gateway."""
    sat, sat_latency = await phases.saturation(plan, stage, timeline, say)
    rate = plan.rate or max((sat.subject_rate or 1.0) / 2, 0.5)
    tail, achieved = await phases.open_loop(plan, stage, timeline, rate, say)
    relay = await phases.relay_vs_raw(plan, stage, timeline, say)
    gateway, server_cpu, http_errors = await phases.gateway_vs_bare(plan, stage, timeline, say)
    return Measured(sat, sat_latency, rate, tail, achieved, relay, gateway, server_cpu, http_errors)


async def run(plan: BenchPlan, res: Resources, timeline: Timeline, say: Say) -> BenchResult:
    """Start, measure, describe; the processes are left running for the caller to release."""
    stage = await start(plan, res, timeline, say)
    try:
        measured = await measure(plan, stage, timeline, say)
        broker, postgres = await broker_versions(res.settings), await res.databases.server_version()
    finally:
        await stage.close()
    return BenchResult(
        saturation=measured.saturation,
        messages_per_chain=MESSAGES_PER_CHAIN,
        saturation_latency_ms=measured.saturation_latency,
        open_loop_rate=measured.rate,
        open_loop_achieved=measured.achieved,
        open_loop_latency_ms=measured.tail,
        relay=measured.relay,
        gateway=measured.gateway,
        gateway_cpu=measured.server_cpu,
        cpu_ms={
            "per_order": stage.cpu.ms_per_item("warren", WARREN_PROCESSES),
            "per_chain": stage.cpu.ms_per_item("baseline", BASELINE_PROCESSES),
        },
        failures={
            "warren_orders": stage.load.failures,
            "baseline_chains": stage.baseline.failures,
            "gateway_http": measured.http_errors,
        },
        rss_mb=res.children.peak_rss_mb() | {"bench": peak_rss_mb() or 0.0},
        workers=WORKERS,
        machine=describe(broker, postgres),
        run=_run_facts(plan, res),
    )


def _run_facts(plan: BenchPlan, res: Resources) -> dict[str, object]:
    settings = res.settings
    return {
        "quick": plan.quick,
        "db": plan.db,
        "round_s": plan.round_s,
        "pairs": plan.pairs,
        "clients": plan.clients,
        "open_loop_s": plan.open_loop_s,
        "relay_messages": plan.relay_messages,
        "relay_pairs": plan.relay_pairs,
        "http_round_s": plan.http_round_s,
        "http_connections": f"{plan.http_processes} x {plan.http_connections}",
        "prefetch": settings.prefetch,
        "queue_type": settings.queue_type,
        "relay_batch_size": settings.relay_batch_size,
    }
