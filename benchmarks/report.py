"""The outcome of a run: one record, its JSON shape and the lines printed (pure, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks.stats import Comparison, Latency, ratio

# The bar of issue 16 (docs/performance.md): each a median over pairs or a peak over the run.
SATURATION_GOAL = 0.5  # Warren orders/s over raw same-hop chains/s, at least
GATEWAY_GOAL = 0.5  # the gateway's POST /orders over a bare FastAPI endpoint, at least
CPU_GOAL_MS = 15.0  # CPU ms per order in Warren's processes (not the load generator), at most
RSS_GOAL_MB = 80.0  # peak RSS of each worker process, at most
TAIL_GOAL = 5.0  # p99 over p50 at half saturation, at most
BUSY_SERVER = 0.8  # below this share of a core, the bare endpoint was not the limit


@dataclass(frozen=True)
class BenchResult:
    """Every figure of a run; rates are medians over rounds, ratios medians over pairs."""

    saturation: Comparison  # Warren orders CONFIRMED/s vs baseline chains/s
    messages_per_chain: int
    saturation_latency_ms: Latency
    open_loop_rate: float
    open_loop_achieved: float
    open_loop_latency_ms: Latency
    relay: Comparison  # relay msgs/s vs raw confirmed msgs/s
    gateway: Comparison  # gateway req/s vs bare req/s
    gateway_cpu: dict[str, float]  # share of one core each server used under load
    cpu_ms: dict[str, dict[str, float]]  # CPU ms per order / per chain, by process
    failures: dict[str, int]
    rss_mb: dict[str, float]
    workers: tuple[str, ...] = ()  # the processes the RSS goal holds to (not the baselines')
    machine: dict[str, str] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def tail_ratio(self) -> float | None:
        """p99 / p50 of the open-loop run."""
        return ratio(self.open_loop_latency_ms["p99"], self.open_loop_latency_ms["p50"])

    @property
    def warren_cpu_ms(self) -> float | None:
        """CPU ms per order in Warren's own processes (the load generator left out)."""
        spent = {k: v for k, v in self.cpu_ms.get("per_order", {}).items() if k != "bench"}
        return sum(spent.values()) if spent else None

    @property
    def worker_rss_mb(self) -> float | None:
        """The largest peak RSS of a worker process."""
        peaks = [v for k, v in self.rss_mb.items() if k in self.workers]
        return max(peaks) if peaks else None

    def goals(self) -> dict[str, bool | None]:
        """The issue's bar: None when a figure is missing."""
        sat, gw, tail = self.saturation.ratio, self.gateway.ratio, self.tail_ratio
        cpu, rss = self.warren_cpu_ms, self.worker_rss_mb
        return {
            "saturation_ratio_at_least_0.5": None if sat is None else sat >= SATURATION_GOAL,
            "gateway_ratio_at_least_0.5": None if gw is None else gw >= GATEWAY_GOAL,
            "cpu_ms_per_order_at_most_15": None if cpu is None else cpu <= CPU_GOAL_MS,
            "worker_peak_rss_at_most_80_mib": None if rss is None else rss <= RSS_GOAL_MB,
            "p99_at_most_5x_p50": None if tail is None else tail <= TAIL_GOAL,
        }


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def to_json(result: BenchResult) -> dict[str, Any]:
    """The `--json` document: the agreed keys first, then the detail behind them."""
    chains = result.saturation.baseline_rate
    return {
        "orders_per_s": _r(result.saturation.subject_rate, 2),
        "baseline_msgs_per_s": _r(
            None if chains is None else chains * result.messages_per_chain, 1
        ),
        "ratio_to_baseline": _r(result.saturation.ratio),
        "latency_ms": result.open_loop_latency_ms,
        "relay_ratio": _r(result.relay.ratio),
        "gateway_ratio": _r(result.gateway.ratio),
        "rss_mb": result.rss_mb,
        "baseline_chains_per_s": _r(chains, 2),
        "messages_per_chain": result.messages_per_chain,
        "saturation_latency_ms": result.saturation_latency_ms,
        "open_loop": {
            "rate_per_s": _r(result.open_loop_rate, 2),
            "achieved_per_s": _r(result.open_loop_achieved, 2),
            "p99_over_p50": _r(result.tail_ratio, 2),
        },
        "relay": _comparison(result.relay, "relay_msgs_per_s", "raw_msgs_per_s"),
        "gateway": _comparison(result.gateway, "gateway_req_per_s", "bare_req_per_s")
        | {"server_cpu_share": result.gateway_cpu},
        "saturation": _comparison(result.saturation, "orders_per_s", "chains_per_s"),
        "cpu_ms": result.cpu_ms,
        "failures": result.failures,
        "goals": result.goals(),
        "machine": result.machine,
        "run": result.run,
    }


def _comparison(c: Comparison, subject: str, baseline: str) -> dict[str, Any]:
    return {
        subject: _r(c.subject_rate, 1),
        baseline: _r(c.baseline_rate, 1),
        "ratio": _r(c.ratio),
        "pair_ratios": [round(x, 3) for x in c.ratios],
        "rounds": {
            subject: [round(x, 1) for x in c.subject],
            baseline: [round(x, 1) for x in c.baseline],
        },
    }


def _ms(latency: Latency) -> str:
    return " / ".join(
        "-" if latency[k] is None else f"{latency[k]:.0f}" for k in ("p50", "p95", "p99")
    )


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "unknown"}[met]


def format_report(result: BenchResult) -> list[str]:
    """The lines `warren bench` prints at the end."""
    sat, relay, gw, goals = result.saturation, result.relay, result.gateway, result.goals()
    chains = sat.baseline_rate or 0.0
    lines = [
        f"orders CONFIRMED/s at saturation   {sat.subject_rate or 0:.1f}",
        f"raw same-hop baseline              {chains:.1f} chains/s "
        f"({chains * result.messages_per_chain:.0f} msgs/s, {result.messages_per_chain} per chain)",
        f"  ratio to baseline                {_x(sat.ratio)}  (goal >= {SATURATION_GOAL:g}: "
        f"{_verdict(goals['saturation_ratio_at_least_0.5'])})",
        f"latency at saturation p50/p95/p99  {_ms(result.saturation_latency_ms)} ms",
        f"open loop at {result.open_loop_rate:.1f}/s (achieved {result.open_loop_achieved:.1f}/s)",
        f"  placement to CONFIRMED p50/p95/p99 {_ms(result.open_loop_latency_ms)} ms",
        f"  p99/p50                          {_x(result.tail_ratio)}  (goal <= {TAIL_GOAL:g}: "
        f"{_verdict(goals['p99_at_most_5x_p50'])})",
        f"relay {relay.subject_rate or 0:.0f} msgs/s vs raw {relay.baseline_rate or 0:.0f} msgs/s"
        f"   ratio {_x(relay.ratio)}",
        f"gateway {gw.subject_rate or 0:.0f} req/s vs bare {gw.baseline_rate or 0:.0f} req/s"
        f"   ratio {_x(gw.ratio)}   (server CPU: "
        + ", ".join(f"{k} {v:.0%}" for k, v in result.gateway_cpu.items())
        + f"; goal >= {GATEWAY_GOAL:g}: {_verdict(goals['gateway_ratio_at_least_0.5'])})",
        f"CPU ms per order, Warren           {_x(result.warren_cpu_ms)}  (goal <= {CPU_GOAL_MS:g}: "
        f"{_verdict(goals['cpu_ms_per_order_at_most_15'])})",
        f"largest worker peak RSS (MiB)      {_x(result.worker_rss_mb)}  (goal <= {RSS_GOAL_MB:g}: "
        f"{_verdict(goals['worker_peak_rss_at_most_80_mib'])})",
    ]
    return lines + _detail(result)


def _detail(result: BenchResult) -> list[str]:
    lines = []
    for label, key in (("CPU ms per order", "per_order"), ("CPU ms per chain", "per_chain")):
        spent = result.cpu_ms.get(key, {})
        parts = ", ".join(f"{name} {ms:.1f}" for name, ms in spent.items())
        lines.append(f"{label}: {parts} (total {sum(spent.values()):.1f})")
    if result.gateway_cpu.get("bare", 1.0) < BUSY_SERVER:
        lines.append(
            f"note: the bare endpoint used only {result.gateway_cpu['bare']:.0%} of a core: the "
            "machine was busy with other work, or the load generator limited it"
        )
    if any(result.failures.values()):
        lines.append("failures: " + ", ".join(f"{k} {v}" for k, v in result.failures.items() if v))
    lines.append("peak RSS (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in result.rss_mb.items()))
    return lines


def plot_notes(result: BenchResult) -> dict[str, str]:
    """What the plot writes into the phases that have no per-order data."""
    relay, gw = result.relay, result.gateway
    return {
        "relay vs raw": f"relay {relay.subject_rate or 0:.0f} vs raw {relay.baseline_rate or 0:.0f}"
        f" msgs/s: {_x(relay.ratio)}",
        "gateway vs bare": f"gateway {gw.subject_rate or 0:.0f} vs bare {gw.baseline_rate or 0:.0f}"
        f" req/s: {_x(gw.ratio)}",
    }
