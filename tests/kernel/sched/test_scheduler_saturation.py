"""The benchmark's situation in virtual time: many background agents keep the input budget
saturated with multi-step tasks while a person asks now and then."""
import asyncio
import random

import pytest

from kernel.sched import Budget, Scheduler, Usage, VirtualClock, run_virtual

from ._sim import Call, Recorder, jain, window_max
from .test_scheduler_basic import T

LIMIT = 40_000
END = 300.0
PERSON = 1


def utilisation(calls: list[Call], t0: float, t1: float) -> float:
    """Mean over moments m in [t0, t1) of the input admitted in (m - 60, m], over the limit."""
    points = [(c.stamp, c.input_tokens) for c in calls]
    fractions = []
    m = t0
    while m < t1:
        fractions.append(sum(x for t, x in points if m - 60 < t <= m) / LIMIT)
        m += 0.5
    return sum(fractions) / len(fractions)


def saturate(n: int, person: bool) -> tuple[list[Call], list[float]]:
    clock = VirtualClock()
    s = Scheduler(Budget(input_tokens_per_minute=LIMIT), clock=clock)
    rec = Recorder(s)
    waits: list[float] = []

    async def agent(pid: int) -> None:
        rng = random.Random(pid)
        while clock.now() < END:
            # A task: a new ticket (uncached), then two short steps (the rest is cached).
            for counted in (900, 220, 260):
                out = 60 + rng.randrange(30)
                await rec.call(T(pid, priority="background", est_input_tokens=counted + 50,
                                 max_tokens=1024), duration=0.05 + out * 0.02,
                               usage=Usage(input_tokens=counted, output_tokens=out))
                await asyncio.sleep(0.02)   # the tool call

    async def asks() -> None:
        await asyncio.sleep(120)
        for _ in range(30):
            r = await rec.call(T(PERSON, priority="interactive", est_input_tokens=80,
                                 max_tokens=1024), duration=0.6,
                               usage=Usage(input_tokens=70, output_tokens=30))
            waits.append(r.waited)
            await asyncio.sleep(4)

    async def main() -> None:
        await asyncio.gather(*(agent(100 + i) for i in range(n)), *([asks()] if person else []))

    run_virtual(main(), clock)
    return rec.calls, waits


@pytest.mark.parametrize("n", [5, 20, 50])
def test_the_budget_stays_used_and_shared_and_a_person_never_waits(n: int) -> None:
    calls, waits = saturate(n, person=True)
    assert window_max(calls, "input_tokens") <= LIMIT
    # Once a whole window has passed under saturation, before and while the person asks.
    assert utilisation(calls, 61, 120) >= 0.95
    assert utilisation(calls, 120, END) >= 0.95
    per_agent: dict[int, int] = {}
    for c in calls:
        if c.pid != PERSON and 60 <= c.stamp < END:
            per_agent[c.pid] = per_agent.get(c.pid, 0) + c.input_tokens + c.output_tokens
    assert jain(list(per_agent.values())) >= 0.99
    assert len(waits) == 30
    assert sorted(waits)[int(0.95 * len(waits)) - 1] == 0.0 and max(waits) <= 1.5, waits
