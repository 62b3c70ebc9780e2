"""Figures of one arm of the benchmark, computed from what the provider saw."""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.provider import CallRecord
from bench.workload import PROBE_AGENT

WINDOW = 60.0


@dataclass
class ArmResult:
    """What one arm (kernel or direct) did; times are time.monotonic()."""

    arm: str
    n: int
    tasks_per_agent: int
    agents: list[str]
    outcomes: dict[tuple[str, int], str]      # (agent, task) -> ok | failed | unfinished
    started: float
    ended: float
    saturated: tuple[float, float] | None     # while demand exceeded supply
    saturation_source: str
    count_429: int
    max_window_input: int                     # server's max_window_usage("input_tokens")
    records: list[CallRecord]
    failures: dict[str, int] = field(default_factory=dict)   # failure reason -> count
    probes: list[dict[str, Any]] = field(default_factory=list)
    timed_out: bool = False
    agent_done: dict[str, float] = field(default_factory=dict)  # agent -> last task's end


def jain(values: Sequence[float]) -> float | None:
    """Jain's fairness index: (sum x)^2 / (n * sum x^2); 1 = perfectly equal."""
    if not values:
        return None
    square = sum(v * v for v in values)
    if square == 0:
        return None
    return sum(values) ** 2 / (len(values) * square)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolated percentile (p in 0..100)."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def max_window(points: Iterable[tuple[float, int]], window: float = WINDOW) -> int:
    """Largest total over any rolling window (the same rule as the fake server's)."""
    pts = sorted(points)
    best = total = start = 0
    for t, amount in pts:
        total += amount
        while pts[start][0] <= t - window:
            total -= pts[start][1]
            start += 1
        best = max(best, total)
    return best


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(x, nd)


def _agent_tokens(records: Iterable[CallRecord], agents: list[str], t0: float,
                  t1: float) -> list[int]:
    per = dict.fromkeys(agents, 0)
    for r in records:
        if r.admitted and r.agent in per and t0 <= r.t < t1:
            per[r.agent] += r.tokens
    return [per[a] for a in agents]


def summarise(res: ArmResult, itpm: int) -> dict[str, Any]:
    """The figures of one arm, as they go into the JSON."""
    outcomes = [o for (agent, _), o in res.outcomes.items() if agent != PROBE_AGENT]
    completed = outcomes.count("ok")
    failed = outcomes.count("failed")
    unfinished = outcomes.count("unfinished")
    wall = res.ended - res.started
    bench = [r for r in res.records if r.agent != PROBE_AGENT]
    thrown_tasks = {key for key, o in res.outcomes.items() if o != "ok"}
    failed_task_tokens = sum(r.tokens for r in bench
                             if r.admitted and (r.agent, r.task) in thrown_tasks)
    refused_input = sum(r.counted_input for r in res.records if not r.admitted)
    offered = max_window((r.t, r.counted_input) for r in res.records)
    out: dict[str, Any] = {
        "tasks": len(outcomes), "completed": completed, "failed": failed,
        "unfinished": unfinished, "failure_reasons": res.failures,
        "wall_s": _r(wall, 1),
        "goodput_tasks_per_min": _r(completed / (wall / 60.0) if wall > 0 else None, 2),
        "work_in_windows": _r(sum(r.counted_input for r in res.records if r.admitted) / itpm, 2),
        "requests": len(res.records),
        "requests_admitted": sum(1 for r in res.records if r.admitted),
        "count_429": res.count_429,
        "tokens": {
            "counted_input": sum(r.counted_input for r in res.records if r.admitted),
            "cache_read": sum(r.cache_read for r in res.records if r.admitted),
            "output": sum(r.output for r in res.records if r.admitted),
        },
        "wasted_tokens": {
            "total": failed_task_tokens + refused_input,
            "of_failed_or_unfinished_tasks": failed_task_tokens,
            "input_of_refused_requests": refused_input,
        },
        "overrun_tokens": max(0, res.max_window_input - itpm),
        "max_minute_input_tokens": res.max_window_input,
        "offered_max_minute_input_tokens": offered,
        "offered_overrun_tokens": max(0, offered - itpm),
        "timed_out": res.timed_out,
    }
    out["saturated"] = _saturated(res, bench, itpm)
    return out


def _saturated(res: ArmResult, bench: list[CallRecord], itpm: int) -> dict[str, Any] | None:
    """Utilisation over the saturated interval; Jain's index over its part in which every
    agent still had work (until the first agent finished its last task)."""
    if res.saturated is None:
        return None
    t0, t1 = res.saturated
    span = t1 - t0
    used = sum(r.counted_input for r in res.records if r.admitted and t0 <= r.t < t1)
    f1 = min([t1, *res.agent_done.values()])
    shares = _agent_tokens(bench, res.agents, t0, f1)
    steps = dict.fromkeys(res.agents, 0)
    for r in bench:
        if r.admitted and r.agent in steps and t0 <= r.t < f1:
            steps[r.agent] += 1
    return {
        "source": res.saturation_source,
        "from_s": _r(t0 - res.started, 1), "to_s": _r(t1 - res.started, 1),
        "seconds": _r(span, 1),
        "input_tokens_per_min": _r(used / (span / 60.0), 0) if span > 0 else None,
        # Over less than a window a rolling-window provider admits bursts above the rate.
        "utilisation": _r(used / (itpm * span / 60.0), 4) if span >= WINDOW else None,
        "fairness_to_s": _r(f1 - res.started, 1),
        "jain_tokens": _r(jain(shares), 4) if f1 - t0 >= 1.0 else None,
        "jain_steps": _r(jain(list(steps.values())), 4) if f1 - t0 >= 1.0 else None,
        "agent_tokens_min_max": [min(shares), max(shares)] if shares else None,
    }


def summarise_probes(probes: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p95 of the interactive probes' waits, in milliseconds."""
    def stat(key: str) -> dict[str, float | None]:
        xs = [p[key] for p in probes if p.get(key) is not None]
        return {"p50": _r(percentile(xs, 50), 1), "p95": _r(percentile(xs, 95), 1),
                "max": _r(max(xs), 1) if xs else None}
    return {
        "probes": len(probes),
        "during_saturation": sum(1 for p in probes if p.get("saturated")),
        "completed": sum(1 for p in probes if p.get("status") == "ok"),
        "scheduler_wait_ms": stat("scheduler_wait_ms"),
        "wait_beyond_call_in_flight_ms": stat("beyond_in_flight_ms"),
        "request_to_provider_ms": stat("to_provider_ms"),
        "wait_reasons": sorted({r for p in probes for r in p.get("reasons", [])}),
        "each": probes,
    }
