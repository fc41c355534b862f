"""`warren scale`: run the autoscaler for local worker processes, and `warren status`."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Annotated

import typer
from loguru import logger

from config.settings import get_settings
from workers.ops.autoscale import Autoscaler, ScalePolicy
from workers.ops.pool import LocalPool
from workers.ops.readiness import worker_probe
from workers.runtime.discovery import worker_names, workers
from workers.runtime.logs import configure_logging
from workers.runtime.service import serve_metrics


def scalable() -> list[str]:
    """The workers a local pool can scale: not those serving HTTP on one configured port."""
    return [s.name for s in workers() if not s.http]


def policy_options(
    target: int, min_replicas: int, max_replicas: int, window: float, interval: float
) -> ScalePolicy:
    """A policy from command-line options, refusing contradictions."""
    if not 1 <= min_replicas <= max_replicas:
        raise typer.BadParameter("need 1 <= --min <= --max")
    return ScalePolicy(target, min_replicas, max_replicas, window, interval)


def scale(
    services: Annotated[
        list[str] | None, typer.Argument(help="Default: every worker without an HTTP API.")
    ] = None,
    target: Annotated[int, typer.Option(min=1, help="Backlog one worker should carry.")] = 100,
    min_replicas: Annotated[int, typer.Option("--min", help="Fewest workers.")] = 1,
    max_replicas: Annotated[int, typer.Option("--max", help="Most workers.")] = 4,
    window: Annotated[float, typer.Option(help="Scale-down stabilisation, seconds.")] = 60.0,
    interval: Annotated[float, typer.Option(help="Seconds between decisions.")] = 5.0,
) -> None:
    """Run worker processes and scale each service by its queue depth until Ctrl-C."""
    chosen = services or scalable()
    unknown = set(chosen) - set(worker_names())
    if unknown:
        raise typer.BadParameter(f"unknown worker(s): {', '.join(sorted(unknown))}")
    serving = set(chosen) - set(scalable())
    if serving:
        raise typer.BadParameter(
            f"{', '.join(sorted(serving))} serve(s) an HTTP API on a configured port: run more "
            "instances by hand, each with its own WARREN_HTTP_PORT, and list them in "
            "WARREN_<NAME>_API_URLS"
        )
    policy = policy_options(target, min_replicas, max_replicas, window, interval)
    settings = get_settings()
    configure_logging("autoscaler", level=settings.log_level, json_lines=settings.log_json)
    serve_metrics(settings)
    asyncio.run(run_scaler(chosen, policy, base=0))


async def run_scaler(
    services: list[str], policy: ScalePolicy, *, base: int, stop: asyncio.Event | None = None
) -> None:
    """Scale `services` until `stop` (default: SIGINT/SIGTERM), then drain every pooled worker."""
    settings = get_settings()
    env = {k: v for k, v in os.environ.items() if k != "WARREN_METRICS_PORT"}  # no shared port
    pools = {
        name: LocalPool(
            name,
            ["workers.cli", "worker", name],
            probe=worker_probe(settings, name),
            env=env,
            base=base,
            drain_timeout_s=settings.drain_timeout_s + 10,
        )
        for name in services
    }
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    logger.info(
        "autoscaling {} (target {} per worker, {}..{})",
        ", ".join(services),
        policy.target_per_worker,
        policy.min_replicas,
        policy.max_replicas,
    )
    await Autoscaler(settings, dict(pools), policy).run(stop)
    await asyncio.gather(*(pool.close() for pool in pools.values()))
