"""Run the benchmark, always release what it started, then print and write the figures."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from rich.console import Console

from benchmarks.phases import Say
from benchmarks.plan import BenchPlan
from benchmarks.report import BenchResult, format_report, plot_notes, to_json
from benchmarks.resources import Placed, Resources
from benchmarks.run import run
from benchmarks.timeline import Timeline
from config.settings import get_settings

R = TypeVar("R")
Measure = Callable[[Resources, Timeline, Say], Awaitable[R]]


async def _guarded(measure: Measure[R], res: Resources, timeline: Timeline, console: Console) -> R:
    task = asyncio.current_task()
    if task is not None:  # SIGTERM stops the run like Ctrl-C: cancel, then release everything
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await measure(
        res, timeline, lambda line: console.print(line, highlight=False, soft_wrap=True)
    )


def _release(res: Resources, console: Console) -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # finish cleaning up first
    try:
        console.print("stopping every process, deleting the vhosts and databases")
        for problem in res.release():
            console.print(f"[red]could not remove {problem}[/]")
    finally:
        signal.signal(signal.SIGINT, previous)


def execute(
    title: str,
    plan: Placed,
    measure: Measure[R],
    write: Callable[[R, Timeline, Console], None],
) -> int:
    """Run `measure` with fresh resources, release them whatever happens, then `write` the
    figures; 0 when every figure was measured, 1 on failure, 130 when interrupted."""
    console, started = Console(), time.monotonic()
    res, timeline = Resources(get_settings(), plan), Timeline()
    console.print(f"{title} (run {res.run_id}, {plan.db})")
    try:
        result = asyncio.run(_guarded(measure, res, timeline, console))
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("interrupted")
        return 130
    except Exception as exc:  # say what failed and where the logs are; release all the same
        console.print(f"[red]benchmark failed: {type(exc).__name__}: {exc}[/]")
        console.print(f"the processes' logs are in {res.children.log_dir}/")
        return 1
    finally:
        _release(res, console)
    write(result, timeline, console)
    console.print(f"done in {time.monotonic() - started:.0f}s")
    return 0


def main(plan: BenchPlan) -> int:
    """Run `plan`; 0 when every figure was measured, 1 on failure, 130 when interrupted."""
    title = f"warren bench {'--quick ' if plan.quick else ''}"
    return execute(
        title.rstrip(),
        plan,
        lambda res, timeline, say: run(plan, res, timeline, say),
        lambda result, timeline, console: _write(plan, result, timeline, console),
    )


def _write(plan: BenchPlan, result: BenchResult, timeline: Timeline, console: Console) -> None:
    from benchmarks.plot import save_plot

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    png = plan.out_dir / f"bench-{stamp}.png"
    title = f"warren bench {'--quick ' if plan.quick else ''}({plan.db}, {stamp} UTC)"
    save_plot(timeline, png, title, plot_notes(result))
    console.rule("[bold]warren bench")
    for line in format_report(result):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"plot: {png}")
    if plan.json_path is not None:
        plan.json_path.parent.mkdir(parents=True, exist_ok=True)
        plan.json_path.write_text(json.dumps(to_json(result), indent=2) + "\n")
        console.print(f"figures: {plan.json_path}")
