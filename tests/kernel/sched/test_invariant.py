"""Property: random workloads never put more in any window than any limit allows."""
import asyncio
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.sched import (
    POLICIES, PRIORITIES, Budget, RequestTooLarge, Scheduler, Ticket, Usage, VirtualClock,
    run_virtual,
)
from kernel.sched.ledger import period_keys

from ._sim import UTC, Call, utc, window_max


@dataclass
class Spec:
    est: int
    max_tokens: int
    used_in: float      # fraction of the estimate really used
    cache_write: float  # fraction of the used input that were cache writes
    cache_read: int
    used_out: float
    duration: float
    pause: float
    ending: str         # settle | sent | unsent | cancel


calls_st = st.builds(
    Spec, est=st.integers(0, 6000), max_tokens=st.integers(1, 2500),
    used_in=st.floats(0, 1), cache_write=st.floats(0, 1), cache_read=st.integers(0, 5000),
    used_out=st.floats(0, 1), duration=st.floats(0, 40), pause=st.floats(0, 30),
    ending=st.sampled_from(["settle"] * 6 + ["sent", "unsent", "cancel"]))

agent_st = st.tuples(st.sampled_from(PRIORITIES), st.sampled_from([0.5, 1.0, 3.0]),
                     st.one_of(st.none(), st.integers(3000, 30_000)),
                     st.lists(calls_st, min_size=1, max_size=6))

budget_st = st.builds(
    Budget,
    input_tokens_per_minute=st.one_of(st.none(), st.integers(2000, 25_000)),
    output_tokens_per_minute=st.one_of(st.none(), st.integers(500, 6000)),
    requests_per_minute=st.one_of(st.none(), st.integers(1, 15)),
    max_concurrent=st.one_of(st.none(), st.integers(1, 4)),
    usd_per_day=st.one_of(st.none(), st.floats(0.01, 0.5)),
    policy=st.sampled_from(POLICIES))


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(budget=budget_st, agents=st.lists(agent_st, min_size=1, max_size=5),
       storms=st.lists(st.tuples(st.floats(0, 120), st.floats(0, 20)), max_size=3),
       margin=st.sampled_from([0.0, 1.0]), reserve=st.sampled_from([0.0, 0.2]),
       burst=st.sampled_from([0.25, 1.0]))
def test_no_window_ever_exceeds_a_limit(budget, agents, storms, margin, reserve, burst):
    clock = VirtualClock(wall_origin=utc(2026, 6, 30, 23, 58))  # a day and month turn in it
    s = Scheduler(budget, clock=clock, tz=UTC, window_margin=margin,
                  interactive_reserve=reserve, pace_burst=burst)
    calls: list[Call] = []
    costs: dict[str, float] = {}
    pauses: list[tuple[float, float]] = []
    state = {"in_flight": 0, "max": 0}

    async def agent(pid: int, priority: str, weight: float, quota: int | None,
                    specs: list[Spec]) -> None:
        for sp in specs:
            await asyncio.sleep(sp.pause)
            t = Ticket(pid=pid, agent=f"agent{pid}", priority=priority, weight=weight,
                       deadline=clock.now() + sp.pause, model="claude-haiku-4-5",
                       est_input_tokens=sp.est, max_tokens=sp.max_tokens,
                       agent_tokens_per_minute=quota)
            try:
                if sp.ending == "cancel":
                    r = await asyncio.wait_for(s.admit(t), timeout=sp.duration)
                else:
                    r = await s.admit(t)
            except RequestTooLarge:
                assert s._too_large(t)
                continue
            except asyncio.TimeoutError:
                continue
            state["in_flight"] += 1
            state["max"] = max(state["max"], state["in_flight"])
            used_in = int(sp.est * sp.used_in)
            writes = int(used_in * sp.cache_write)
            u = Usage(input_tokens=used_in - writes, cache_creation_input_tokens=writes,
                      cache_read_input_tokens=sp.cache_read,
                      output_tokens=int(sp.max_tokens * sp.used_out))
            c = Call(pid, t.agent, priority, r.admitted_at, 1, u.counted_input_tokens,
                     u.output_tokens, r.waited)
            calls.append(c)
            await asyncio.sleep(sp.duration)
            state["in_flight"] -= 1
            if sp.ending in ("settle", "cancel"):
                s.settle(r, u)
            else:
                c.output_tokens = 0
                u = Usage(input_tokens=sp.est) if sp.ending == "sent" else Usage()
                if sp.ending == "unsent":
                    c.requests = c.input_tokens = 0
                s.abandon(r, reached_provider=sp.ending == "sent")
            day = period_keys(clock.wall() - (clock.now() - r.admitted_at), UTC)[0]
            costs[day] = costs.get(day, 0.0) + s.prices.cost(t.model, u)

    async def storm(at: float, retry_after: float) -> None:
        await asyncio.sleep(at)
        pauses.append((clock.now(), clock.now() + retry_after))
        s.on_rate_limited(retry_after)

    async def main() -> None:
        await asyncio.gather(*(agent(pid, *a) for pid, a in enumerate(agents)),
                             *(storm(*st_) for st_ in storms))

    run_virtual(main(), clock)

    for window in {60.0, s.window}:
        for attr, limit in (("requests", budget.requests_per_minute),
                            ("input_tokens", budget.input_tokens_per_minute),
                            ("output_tokens", budget.output_tokens_per_minute)):
            if limit is not None:
                assert window_max(calls, attr, window) <= limit, (attr, limit)
                lower = [c for c in calls if c.priority != "interactive"]
                assert window_max(lower, attr, window) <= max(1, int(limit * (1 - reserve)))
        for pid, (_, _, quota, _) in enumerate(agents):
            if quota is not None:
                assert window_max(calls, "tokens", window, agent=f"agent{pid}") <= quota
    if budget.max_concurrent is not None:
        assert state["max"] <= budget.max_concurrent
    if budget.usd_per_day is not None:
        assert all(v <= budget.usd_per_day + 1e-9 for v in costs.values()), costs
    for start, end in pauses:
        assert not [c for c in calls if start < c.stamp < end]
    assert s.ledger.in_flight() == 0 and not s.report()["waiting"]
