"""The measured phases of a run; each alternates what it compares so noise hits both sides."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from benchmarks.baseline import Baseline
from benchmarks.gateway import GatewayBench, HttpRound
from benchmarks.load import OrderLoad
from benchmarks.plan import BenchPlan
from benchmarks.processes import Children
from benchmarks.relay import RelayBench
from benchmarks.stats import Comparison, Latency, latency_ms
from benchmarks.timeline import Timeline, Window

Say = Callable[[str], None]
CloseLoop = Callable[[int, float], Awaitable[Window]]


@dataclass
class CpuLedger:
    """CPU seconds each process spent during the rounds of a series, and what they completed."""

    spent: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    completed: Counter[str] = field(default_factory=Counter)

    def add(
        self, series: str, before: dict[str, float], after: dict[str, float], done: int
    ) -> None:
        for name, seconds in after.items():
            used = seconds - before.get(name, seconds)
            self.spent[series][name] = self.spent[series].get(name, 0.0) + used
        self.completed[series] += done

    def ms_per_item(self, series: str, names: tuple[str, ...]) -> dict[str, float]:
        """CPU milliseconds per completed order (or chain), for the processes named."""
        done = max(self.completed[series], 1)
        spent = self.spent[series]
        return {n: round(spent[n] * 1000 / done, 2) for n in names if n in spent}


@dataclass
class Stage:
    """What the phases drive: Warren's HTTP load, the baseline, the relay and gateway benches."""

    load: OrderLoad
    baseline: Baseline
    relay: RelayBench
    gateway: GatewayBench
    children: Children
    cpu: CpuLedger = field(default_factory=CpuLedger)

    async def close(self) -> None:
        """Close the connections made from this process."""
        await self.load.close()
        await self.baseline.close()
        await self.relay.close()


class Rounds(Protocol):
    """How closed-loop rounds run: how long, how many pairs, how much in flight."""

    @property
    def round_s(self) -> float: ...
    @property
    def pairs(self) -> int: ...
    @property
    def warmup_s(self) -> float: ...
    @property
    def clients(self) -> int: ...


async def _round(
    children: Children,
    cpu: CpuLedger,
    timeline: Timeline,
    series: str,
    run: CloseLoop,
    plan: Rounds,
) -> Window:
    """One closed-loop round of `series`; its steady window, its CPU booked to the ledger."""
    children.check()
    before = children.cpu_seconds()
    round_ = await run(plan.clients, plan.round_s)
    done = len(timeline.started_within(series, round_))
    cpu.add(series, before, children.cpu_seconds(), done)
    return timeline.settled(series, round_, plan.clients, plan.warmup_s)


async def interleaved(
    plan: Rounds,
    children: Children,
    cpu: CpuLedger,
    timeline: Timeline,
    loops: Mapping[str, CloseLoop],
    say: Callable[[int, dict[str, float]], None],
) -> tuple[dict[str, list[float]], dict[str, list[Window]]]:
    """A warm-up of each series, then `plan.pairs` rounds of each in turn (A B A B ...).

    Returns each series' rate and steady window per round; `say` hears each pair's rates.
    """
    for series, run in loops.items():
        with timeline.phase(f"{series} warm-up"):
            await run(plan.clients, plan.warmup_s + 1)
    rates: dict[str, list[float]] = {series: [] for series in loops}
    windows: dict[str, list[Window]] = {series: [] for series in loops}
    for i in range(1, plan.pairs + 1):
        for series, run in loops.items():
            with timeline.phase(f"{series} {i}"):
                window = await _round(children, cpu, timeline, series, run, plan)
            rates[series].append(timeline.rate(series, window))
            windows[series].append(window)
        say(i, {series: r[-1] for series, r in rates.items()})
    return rates, windows


async def saturation(
    plan: BenchPlan, stage: Stage, timeline: Timeline, say: Say
) -> tuple[Comparison, Latency]:
    """Closed loop, baseline and Warren in alternating rounds; Warren's latency under it."""
    loops = {"baseline": stage.baseline.closed_loop, "warren": stage.load.closed_loop}

    def pair(i: int, rate: dict[str, float]) -> None:
        baseline, warren = rate["baseline"], rate["warren"]
        say(f"round {i}: baseline {baseline:.1f} chains/s, Warren {warren:.1f} orders/s")

    rates, windows = await interleaved(plan, stage.children, stage.cpu, timeline, loops, pair)
    done = [c.latency_s for w in windows["warren"] for c in timeline.done_within("warren", w)]
    return Comparison(tuple(rates["warren"]), tuple(rates["baseline"])), latency_ms(done)


async def open_loop(
    plan: BenchPlan, stage: Stage, timeline: Timeline, rate: float, say: Say
) -> tuple[Latency, float]:
    """Warren at a fixed arrival rate: latency of the orders placed after the warm-up."""
    stage.children.check()
    with timeline.phase(f"open loop {rate:.1f}/s"):
        window = await stage.load.open_loop(rate, plan.open_loop_s, plan.warmup_s)
    placed = timeline.started_within("warren", window)
    latency = latency_ms([c.latency_s for c in placed])
    say(f"open loop at {rate:.1f}/s: p50 {latency['p50']} ms, p99 {latency['p99']} ms")
    return latency, len(placed) / window.seconds


async def relay_vs_raw(plan: BenchPlan, stage: Stage, timeline: Timeline, say: Say) -> Comparison:
    """The relay draining N outbox rows, against N raw confirmed publishes, alternately."""
    relay: list[float] = []
    raw: list[float] = []
    with timeline.phase("relay vs raw"):
        await stage.relay.raw_round(200)  # warm-up: channels, statement caches
        await stage.relay.relay_round(200)
        for _ in range(plan.relay_pairs):
            stage.children.check()
            raw.append(await stage.relay.raw_round(plan.relay_messages))
            relay.append(await stage.relay.relay_round(plan.relay_messages))
    say(f"relay {statistics.median(relay):.0f} msgs/s, raw {statistics.median(raw):.0f} msgs/s")
    return Comparison(tuple(relay), tuple(raw))


async def gateway_vs_bare(
    plan: BenchPlan, stage: Stage, timeline: Timeline, say: Say
) -> tuple[Comparison, dict[str, float], int]:
    """`POST /orders` on the lone gateway and on the bare endpoint, alternately."""
    rounds: dict[str, list[HttpRound]] = {"bare": [], "gateway": []}
    with timeline.phase("gateway vs bare"):
        for target in rounds:  # warm-up
            await stage.gateway.round(target, 1.0)
        for _ in range(plan.pairs):
            stage.children.check()
            for target, done in rounds.items():
                done.append(await stage.gateway.round(target, plan.http_round_s))
    rates = {t: tuple(r.requests_per_s for r in done) for t, done in rounds.items()}
    cpu = {t: round(statistics.median(r.server_cpu for r in done), 3) for t, done in rounds.items()}
    errors = sum(r.errors for done in rounds.values() for r in done)
    say(
        f"gateway {statistics.median(rates['gateway']):.0f} req/s, "
        f"bare {statistics.median(rates['bare']):.0f} req/s"
    )
    return Comparison(rates["gateway"], rates["bare"]), cpu, errors
