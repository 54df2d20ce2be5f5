"""Latency timing, done once: the clock, warm-up, round-robin runs and the percentiles reported.

The runtime stamps its own calls with `ms_since`; the inspection loop, `edgesam bench`, the exporter's
backend measurement, the pruning and distillation latency and the benchmark scripts time and summarise
calls with the rest, so every latency figure in the project means the same thing:

- milliseconds of `time.perf_counter` wall time;
- percentiles as numpy's `percentile` (linear interpolation between the closest ranks);
- warm-up: `warm_until_settled` repeats a call until its last SETTLE_WINDOW timings lie within
  SETTLE_TOLERANCE of their median; `round_robin` runs untimed warm-up rounds, then times the candidates
  in turn, so load from other processes hits every candidate alike.

Torch-free (numpy only), like the rest of the runtime.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

# Warm-up: repeat a call until the last SETTLE_WINDOW calls lie within SETTLE_TOLERANCE of their median,
# after at least SETTLE_MIN_CALLS and at most SETTLE_MAX_CALLS calls or SETTLE_MAX_S s.
SETTLE_WINDOW, SETTLE_TOLERANCE = 3, 0.10
SETTLE_MIN_CALLS, SETTLE_MAX_CALLS, SETTLE_MAX_S = 3, 12, 120.0


def ms_since(start: float) -> float:
    """Milliseconds from `start` (a `time.perf_counter()` reading) to now."""
    return (time.perf_counter() - start) * 1e3


def repeat_ms(call: Callable[[], object], runs: int, warmup: int = 0) -> list[float]:
    """`call()` run `warmup` times untimed, then `runs` times: the ms of each timed run."""
    return round_robin({"call": call}, runs, warmup)["call"]


def round_robin(calls: dict[str, Callable[[], object]], runs: int, warmup: int = 1) -> dict[str, list[float]]:
    """{name: ms of each timed run}: `warmup` untimed rounds, then `runs` rounds calling each in turn."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(warmup):
        for call in calls.values():
            call()
    for _ in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(ms_since(start))
    return times


def percentile(values, q: float) -> float | None:
    """The q-th percentile of the values that are not None; None when there are none."""
    values = [v for v in values if v is not None]
    return float(np.percentile(values, q)) if values else None


def spread(values) -> float | None:
    """(p95 - p5) / p50 of the timed calls: how far one call may stray from the median."""
    p5, p50, p95 = percentile(values, 5), percentile(values, 50), percentile(values, 95)
    return None if p50 is None or p50 <= 0 else float((p95 - p5) / p50)


def latency_figures(values_ms) -> dict:
    """n, p50, p95, p99, max, mean and the first call of a series of call latencies (ms)."""
    arr = np.asarray(values_ms, np.float64)
    return {"n": int(arr.size), "p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)),
            "p99": float(np.percentile(arr, 99)), "max": float(arr.max()), "mean": float(arr.mean()),
            "first": float(arr[0])}


def settled(times_ms: list[float], window: int = SETTLE_WINDOW, tolerance: float = SETTLE_TOLERANCE) -> bool:
    """True when the last `window` timings all lie within `tolerance` (a fraction) of their median."""
    if len(times_ms) < window:
        return False
    last = times_ms[-window:]
    mid = float(np.median(last))
    return mid > 0 and all(abs(t - mid) <= tolerance * mid for t in last)


def warm_until_settled(call: Callable[[], object], min_calls: int = SETTLE_MIN_CALLS,
                       max_calls: int = SETTLE_MAX_CALLS, max_s: float = SETTLE_MAX_S,
                       clock=time.perf_counter) -> dict:
    """Run `call()` until its timings settle; returns {"calls", "settled", "ms", "rule"}."""
    times: list[float] = []
    began = clock()
    while len(times) < max_calls:
        start = clock()
        call()
        end = clock()
        times.append((end - start) * 1e3)
        if len(times) >= min_calls and (settled(times) or end - began > max_s):
            break
    return {"calls": len(times), "settled": settled(times), "ms": [round(t, 2) for t in times],
            "rule": f"last {SETTLE_WINDOW} calls within {SETTLE_TOLERANCE:.0%} of their median "
                    f"({min_calls}..{max_calls} calls, at most {max_s:.0f} s)"}
