"""The pure parts of `warren bench`: percentiles, ratios, steady windows and the JSON shape."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest

from benchmarks.chain import CRITICAL_PATH_HOPS, MESSAGES_PER_CHAIN, STATUS, effects
from benchmarks.report import BenchResult, format_report, to_json
from benchmarks.stats import Comparison, latency_ms, percentile, ratio
from benchmarks.timeline import Timeline, Window
from workers.runtime.discovery import worker_names


def _result(**overrides: Any) -> BenchResult:
    result = BenchResult(
        saturation=Comparison((20.0, 22.0, 18.0), (200.0, 200.0, 180.0)),
        messages_per_chain=MESSAGES_PER_CHAIN,
        saturation_latency_ms={"p50": 1500.0, "p95": 2500.0, "p99": 3000.0},
        open_loop_rate=10.0,
        open_loop_achieved=9.9,
        open_loop_latency_ms={"p50": 80.0, "p95": 120.0, "p99": 300.0},
        relay=Comparison((5000.0, 4000.0), (8000.0, 8000.0)),
        gateway=Comparison((150.0, 170.0), (3000.0, 3400.0)),
        gateway_cpu={"bare": 0.9, "gateway": 0.95},
        cpu_ms={"per_order": {"gateway": 30.0, "billing": 20.0}, "per_chain": {"bench": 1.0}},
        failures={"warren_orders": 0, "baseline_chains": 0, "gateway_http": 0},
        rss_mb={"gateway": 100.0, "billing": 90.0},
        workers=("billing",),
    )
    return replace(result, **overrides)


def test_percentiles_interpolate_between_ranks() -> None:
    # given ten latencies 1..10
    values = [float(v) for v in range(10, 0, -1)]

    # then the median lies between 5 and 6, the extremes are the ends, and order does not matter
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile([7.0], 99) == 7.0


def test_percentiles_of_nothing_are_missing_and_bad_quantiles_are_refused() -> None:
    assert math.isnan(percentile([], 50))
    assert latency_ms([]) == {"p50": None, "p95": None, "p99": None}
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_latency_is_reported_in_milliseconds() -> None:
    assert latency_ms([0.1, 0.2, 0.3]) == {"p50": 200.0, "p95": 290.0, "p99": 298.0}


def test_a_ratio_needs_both_figures_and_a_nonzero_denominator() -> None:
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(1.0, 0.0) is None
    assert ratio(None, 4.0) is None
    assert ratio(1.0, None) is None


def test_a_comparison_takes_the_median_of_ratios_of_adjacent_rounds() -> None:
    # given three pairs of rounds, the machine slower during the second
    comparison = Comparison(subject=(20.0, 10.0, 30.0), baseline=(100.0, 40.0, 100.0))

    # then each pair is compared with itself, and the median ratio is reported
    assert comparison.ratios == (0.2, 0.25, 0.3)
    assert comparison.ratio == pytest.approx(0.25)
    assert comparison.spread == (0.2, 0.3)
    assert comparison.subject_rate == 20.0
    assert comparison.baseline_rate == 100.0
    assert Comparison((), ()).ratio is None


def test_the_steady_window_starts_once_every_client_came_round() -> None:
    # given a closed-loop round of 10 s with 2 clients whose orders complete at 3, 4, 5 ... s
    timeline = Timeline(origin=0.0)
    for done in (3.0, 4.0, 5.0, 6.0, 7.0):
        timeline.record("warren", done - 3.0, done)
    round_ = Window(0.0, 10.0)

    # then the window opens at the second completion, not before the minimum warm-up
    assert timeline.settled("warren", round_, clients=2, at_least_s=1.0) == Window(4.0, 10.0)
    assert timeline.settled("warren", round_, clients=2, at_least_s=4.5) == Window(4.5, 10.0)
    # and never later than the middle of the round, however slow the first lap
    assert timeline.settled("warren", round_, clients=50, at_least_s=1.0) == Window(5.0, 10.0)
    assert timeline.rate("warren", Window(4.0, 10.0)) == pytest.approx(4 / 6)


def test_the_baseline_chain_moves_the_sagas_eleven_messages() -> None:
    # given the happy path, step by step
    published = 1  # the PlaceOrder the driver sends
    step, final = "PlaceOrder", []
    while step:
        out = effects(step, "order-1")
        published += len(out)
        keys = [key for key, _ in out]
        commands = [m.type for key, m in out if key != "status"]
        final = [m.type for key, m in out if key == "status"]
        step = commands[0] if commands else ""
        assert all(key in (*worker_names(), STATUS) for key in keys)

    # then it took 11 messages, the last one the CONFIRMED status, after 8 hops
    assert published == MESSAGES_PER_CHAIN == 11
    assert final == ["StatusChanged.CONFIRMED"]
    assert CRITICAL_PATH_HOPS == 8


def test_the_json_document_has_the_agreed_keys_and_compares_like_with_like() -> None:
    # when a result is written as JSON
    document = json.loads(json.dumps(to_json(_result())))

    # then the agreed keys are there, the baseline in messages/s, the ratio on chains/s
    agreed = {
        "orders_per_s",
        "baseline_msgs_per_s",
        "ratio_to_baseline",
        "latency_ms",
        "relay_ratio",
        "gateway_ratio",
        "rss_mb",
    }
    assert agreed <= document.keys()
    assert set(document["latency_ms"]) == {"p50", "p95", "p99"}
    assert document["orders_per_s"] == 20.0
    assert document["baseline_chains_per_s"] == 200.0
    assert document["baseline_msgs_per_s"] == 200.0 * MESSAGES_PER_CHAIN
    assert document["ratio_to_baseline"] == pytest.approx(0.1)
    assert document["relay_ratio"] == pytest.approx(0.5625, abs=1e-3)
    assert document["gateway_ratio"] == pytest.approx(0.05)
    assert document["goals"] == {
        "saturation_ratio_at_least_0.5": False,
        "gateway_ratio_at_least_0.5": False,
        "cpu_ms_per_order_at_most_15": False,
        "worker_peak_rss_at_most_80_mib": False,
        "p99_at_most_5x_p50": True,
    }


def test_missing_figures_leave_the_goals_unknown_rather_than_failing() -> None:
    result = _result(
        saturation=Comparison((), ()),
        open_loop_latency_ms={"p50": None, "p95": None, "p99": None},
    )

    assert result.goals() == {
        "saturation_ratio_at_least_0.5": None,
        "gateway_ratio_at_least_0.5": False,
        "cpu_ms_per_order_at_most_15": False,
        "worker_peak_rss_at_most_80_mib": False,
        "p99_at_most_5x_p50": None,
    }
    assert to_json(result)["ratio_to_baseline"] is None


def test_the_printed_report_states_every_ratio_and_goal() -> None:
    text = "\n".join(format_report(_result()))

    assert "ratio to baseline                0.10  (goal >= 0.5: NOT met)" in text
    assert "p99/p50                          3.75  (goal <= 5: met)" in text
    assert "relay 4500 msgs/s vs raw 8000 msgs/s   ratio 0.56" in text
    assert "gateway 160 req/s vs bare 3200 req/s   ratio 0.05" in text
    assert "peak RSS (MiB): gateway 100, billing 90" in text


def test_the_cpu_and_memory_goals_count_warren_and_its_workers_only() -> None:
    # given a run whose load generator spent 3 ms per order, whose gateways peaked at 100 MiB
    result = _result(
        saturation=Comparison((110.0,), (200.0,)),
        gateway=Comparison((1600.0,), (3000.0,)),
        cpu_ms={"per_order": {"gateway": 8.0, "billing": 6.5, "bench": 3.0}},
        rss_mb={"gateway": 100.0, "lone-gateway": 100.0, "billing": 80.0, "baseline-x": 90.0},
    )

    # then the CPU goal counts Warren's processes, the RSS goal the workers
    assert result.warren_cpu_ms == pytest.approx(14.5)
    assert result.worker_rss_mb == 80.0
    assert all(result.goals().values())
    text = "\n".join(format_report(result))
    assert "CPU ms per order, Warren           14.50  (goal <= 15: met)" in text
    assert "largest worker peak RSS (MiB)      80.00  (goal <= 80: met)" in text
    assert "goal >= 0.5: met" in text

    # and one worker above 80 MiB fails it
    assert (
        replace(result, rss_mb={"billing": 80.5}).goals()["worker_peak_rss_at_most_80_mib"] is False
    )
