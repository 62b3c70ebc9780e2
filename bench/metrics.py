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
    person_from: float | None = None          # first interactive probe (a person is active)
    saturated_at: list[float] = field(default_factory=list)  # moments demand exceeded supply


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
    failed_tasks = {key for key, o in res.outcomes.items() if o == "failed"}
    cut_tasks = {key for key, o in res.outcomes.items() if o == "unfinished"}
    failed_task_tokens = sum(r.tokens for r in bench
                             if r.admitted and (r.agent, r.task) in failed_tasks)
    cut_task_tokens = sum(r.tokens for r in bench if r.admitted and (r.agent, r.task) in cut_tasks)
    refused_input = sum(r.counted_input for r in res.records if not r.admitted)
    offered = max_window((r.t, r.counted_input) for r in res.records)
    out: dict[str, Any] = {
        "tasks": len(outcomes), "completed": completed, "failed": failed,
        "unfinished": unfinished, "failure_reasons": res.failures,
        "wall_s": _r(wall, 1),
        "goodput_tasks_per_min": _r(completed / (wall / 60.0) if wall > 0 else None, 2),
        # Model turns the provider accepted, per minute: progress even where no task of an
        # arm completed within the run.
        "turns_per_min": _r(sum(1 for r in bench if r.admitted) / (wall / 60.0)
                            if wall > 0 else None, 2),
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
            "of_failed_tasks": failed_task_tokens,
            "input_of_refused_requests": refused_input,
        },
        "overrun_tokens": max(0, res.max_window_input - itpm),
        "max_minute_input_tokens": res.max_window_input,
        "offered_max_minute_input_tokens": offered,
        "offered_overrun_tokens": max(0, offered - itpm),
        "tokens_of_tasks_cut_at_the_end": cut_task_tokens,
    }
    out["saturated"] = _saturated(res, bench, itpm)
    return out


def _used(records: Iterable[CallRecord], t0: float, t1: float) -> int:
    return sum(r.counted_input for r in records if r.admitted and t0 <= r.t < t1)


def _whole_windows_after(moments: list[float], since: float) -> list[float]:
    """The moments whose 60 s window lies wholly after ``since``."""
    return [m for m in moments if m - WINDOW >= since]


def _utilisation(records: list[CallRecord], moments: list[float], itpm: int,
                 since: float | None = None) -> float | None:
    """Mean, over the moments demand exceeded supply, of the input the provider counted in
    the 60 s window ending then, over the limit.  While anyone waits for budget a perfect
    scheduler keeps that window full, whatever the length or alignment of the interval.

    ``since``: only moments whose whole window lies after it (the start of saturation):
    a window reaching back before demand began says how fast the scheduler ramps up,
    not how much of the budget it leaves unused while agents wait."""
    if since is not None:
        moments = _whole_windows_after(moments, since)
    if not moments:
        return None
    points = sorted((r.t, r.counted_input) for r in records if r.admitted)
    total, fractions = 0.0, []
    for m in moments:
        total = sum(c for t, c in points if m - WINDOW < t <= m)
        fractions.append(total / itpm)
    return _r(sum(fractions) / len(fractions), 4)


def _rate(records: list[CallRecord], t0: float, t1: float, itpm: int) -> float | None:
    """Counted input per minute / limit over the whole windows of [t0, t1) from t0 (the
    literal definition; bursts at window edges distort it over part of a window)."""
    windows = math.floor((t1 - t0) / WINDOW)
    if windows < 1:
        return None
    return _r(_used(records, t0, t0 + windows * WINDOW) / (itpm * windows), 4)


def _saturated(res: ArmResult, bench: list[CallRecord], itpm: int) -> dict[str, Any] | None:
    """Utilisation while demand exceeded supply; Jain's index over the whole run, in which
    every agent was backlogged (each starts its next task as soon as one ends)."""
    if res.saturated is None:
        return None
    t0, t1 = res.saturated
    span = t1 - t0
    used = _used(res.records, t0, t1)
    f0, f1 = res.started, res.ended
    shares = _agent_tokens(bench, res.agents, f0, f1)
    steps = dict.fromkeys(res.agents, 0)
    for r in bench:
        if r.admitted and r.agent in steps and f0 <= r.t < f1:
            steps[r.agent] += 1
    out: dict[str, Any] = {
        "source": res.saturation_source,
        "from_s": _r(t0 - res.started, 1), "to_s": _r(t1 - res.started, 1),
        "seconds": _r(span, 1),
        "input_tokens_per_min": _r(used / (span / 60.0), 0) if span > 0 else None,
        "utilisation": _utilisation(res.records, res.saturated_at, itpm, since=t0),
        "utilisation_moments": len(_whole_windows_after(res.saturated_at, t0)),
        "utilisation_incl_first_window": _utilisation(res.records, res.saturated_at, itpm),
        "utilisation_rate": _rate(res.records, t0, t1, itpm),
        "saturated_moments": len(res.saturated_at),
        "jain_tokens": _r(jain(shares), 4) if f1 - f0 >= 1.0 else None,
        "jain_steps": _r(jain(list(steps.values())), 4) if f1 - f0 >= 1.0 else None,
        "agent_tokens_min_max": [min(shares), max(shares)] if shares else None,
        "agent_steps_min_max": [min(steps.values()), max(steps.values())] if steps else None,
    }
    if res.person_from is not None and t0 < res.person_from < t1:
        # The kernel keeps room for a person's next call while one is active.
        out["person_active_from_s"] = _r(res.person_from - res.started, 1)
        p = res.person_from
        out["utilisation_before_person"] = _utilisation(
            res.records, [m for m in res.saturated_at if m < p], itpm, since=t0)
        out["utilisation_with_person"] = _utilisation(
            res.records, [m for m in res.saturated_at if m >= p], itpm, since=t0)
    return out


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
