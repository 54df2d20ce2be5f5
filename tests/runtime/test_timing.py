"""`edgesam_runtime.timing`: the one warm-up, round-robin and percentile code behind every latency figure."""
from __future__ import annotations

import numpy as np

from edgesam_runtime import timing


def test_warm_up_runs_until_the_timings_settle():
    """A configuration whose first calls are slow is warmed until three calls agree within 10 %."""
    ticks = iter([0.0, 0.0, 9.0, 9.0, 14.0, 14.0, 17.0, 17.0, 18.0, 18.0, 19.0, 19.0, 20.0, 20.0, 99.0])
    calls = []
    record = timing.warm_until_settled(lambda: calls.append(1), max_s=1e9, clock=lambda: next(ticks))
    # call times 9 s, 5 s, 3 s, 1 s, 1 s, 1 s: settled after the sixth
    assert record["calls"] == len(calls) == 6 and record["settled"] and record["ms"][-3:] == [1000.0] * 3
    ticks = iter([0.0] + [float(t) for t in range(1, 40)])
    capped = timing.warm_until_settled(lambda: None, max_s=1e9, max_calls=4, clock=lambda: next(ticks) ** 2)
    assert capped["calls"] == 4 and not capped["settled"]  # ever slower calls: the cap ends it, unsettled
    assert not timing.settled([1000.0, 1000.0, 1300.0]) and timing.settled([1000.0, 1050.0, 980.0])
    assert timing.spread([1.0, 1.0, 1.0]) == 0.0 and timing.spread([]) is None


def test_round_robin_warms_untimed_then_times_each_candidate_in_turn():
    order = []
    times = timing.round_robin({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, runs=3, warmup=2)
    assert order == ["a", "b"] * 5  # two warm-up rounds, then three timed rounds, interleaved
    assert {name: len(t) for name, t in times.items()} == {"a": 3, "b": 3}
    assert all(ms >= 0 for t in times.values() for ms in t)
    assert len(timing.repeat_ms(lambda: order.append("c"), runs=2, warmup=1)) == 2 and order.count("c") == 3


def test_percentiles_are_numpys_and_skip_undefined_values():
    values = [5.0, 1.0, 3.0, 2.0, 4.0, 100.0]
    figures = timing.latency_figures(values)
    assert figures["n"] == 6 and figures["first"] == 5.0 and figures["max"] == 100.0
    assert figures["p50"] == np.percentile(values, 50) and figures["p99"] == np.percentile(values, 99)
    assert figures["p95"] < figures["p99"] < figures["max"]
    assert timing.percentile([None, *values], 95) == figures["p95"] and timing.percentile([None], 50) is None
