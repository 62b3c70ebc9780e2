"""Reservation, settlement, refill, quotas, concurrency, fail-fast, cancellation, updates."""
import asyncio

import pytest

from kernel.sched import (
    Budget, RequestTooLarge, Scheduler, Ticket, Usage, VirtualClock, run_virtual,
)

from ._sim import Recorder, window_max


def make(budget: Budget, **kw) -> tuple[Scheduler, VirtualClock]:
    """A scheduler on a virtual clock, without the window margin (windows of 60 s)."""
    clock = VirtualClock()
    kw.setdefault("window_margin", 0.0)
    return Scheduler(budget, clock=clock, **kw), clock


def T(pid: int = 1, agent: str | None = None, **kw) -> Ticket:
    kw.setdefault("est_input_tokens", 1000)
    kw.setdefault("max_tokens", 500)
    kw.setdefault("model", "claude-sonnet-4-5")
    return Ticket(pid=pid, agent=agent or f"agent{pid}", **kw)


def test_reservation_then_settlement_frees_the_difference():
    s, clock = make(Budget(input_tokens_per_minute=5000, output_tokens_per_minute=1000))

    async def main() -> None:
        r1 = await s.admit(T(1, est_input_tokens=3000, max_tokens=800))
        assert (r1.input_tokens, r1.output_tokens) == (3000, 800)
        assert s.ledger.used("output_tokens") == 800  # max_tokens is reserved
        waiter = asyncio.create_task(s.admit(T(2, est_input_tokens=1000, max_tokens=400)))
        await asyncio.sleep(1)
        assert not waiter.done() and s.wait_reason(2) == "budget: output tokens per minute"
        # the call used 100 output tokens and hit the cache: settlement shrinks the entry
        s.settle(r1, Usage(input_tokens=200, output_tokens=100, cache_creation_input_tokens=300,
                           cache_read_input_tokens=2500))
        # ... and the waiter is admitted in the same instant: 500 + 1000 in, 100 + 400 out
        assert s.ledger.used("input_tokens") == 1500 and s.ledger.used("output_tokens") == 500
        r2 = await waiter
        assert r2.admitted_at == 1.0 and r2.waited == 1.0 and s.wait_reason(2) is None
        rep = s.report()
        assert rep["agents"]["agent1"]["today"]["cached_tokens"] == 2500
        assert rep["agents"]["agent1"]["today"]["usd"] == pytest.approx(
            (200 * 3 + 300 * 3.75 + 2500 * 0.3 + 100 * 15) / 1e6)
        assert rep["totals"]["in_flight"] == 1 and rep["limits"]["output_tokens_per_minute"] == {
            "limit": 1000, "used": 500}

    run_virtual(main(), clock)


def test_window_refills_after_sixty_seconds_plus_margin():
    # default settings: equal agents, none ahead of another, so no pacing either
    clock = VirtualClock()
    s = Scheduler(Budget(requests_per_minute=2), clock=clock)
    rec = Recorder(s)

    async def main() -> None:
        await asyncio.gather(*(rec.call(T(i), duration=0.5) for i in range(5)))

    run_virtual(main(), clock)
    assert [c.stamp for c in rec.calls] == [0.0, 0.0, 61.0, 61.0, 122.0]
    assert window_max(rec.calls, "requests", window=61.0) == 2


def test_abandon_frees_output_and_input_unless_sent():
    s, clock = make(Budget(input_tokens_per_minute=2000, requests_per_minute=10))

    async def main() -> None:
        r = await s.admit(T(1, est_input_tokens=1500))
        s.abandon(r, reached_provider=False)  # never sent: nothing counts
        assert s.ledger.used("input_tokens") == 0 and s.ledger.used("requests") == 0
        r = await s.admit(T(1, est_input_tokens=1500))
        s.abandon(r, reached_provider=True)  # sent: input counts and is billed
        assert s.ledger.used("input_tokens") == 1500 and s.ledger.used("output_tokens") == 0
        assert s.ledger.used("requests") == 1
        assert s.report()["agents"]["agent1"]["today"]["usd"] == pytest.approx(1500 * 3 / 1e6)
        s.abandon(r)  # twice: ignored with a warning
        assert s.ledger.in_flight() == 0

    run_virtual(main(), clock)


def test_max_concurrent():
    s, clock = make(Budget(max_concurrent=3))
    rec = Recorder(s)

    async def main() -> None:
        await asyncio.gather(*(rec.call(T(i), duration=1 + i % 3) for i in range(12)))

    run_virtual(main(), clock)
    assert rec.max_in_flight == 3 and len(rec.calls) == 12


def test_per_agent_quota_limits_that_agent_only():
    s, clock = make(Budget())
    rec = Recorder(s)

    async def agent(pid: int, quota: int | None, n: int) -> None:
        for _ in range(n):
            await rec.call(T(pid, agent_tokens_per_minute=quota), duration=1)

    async def main() -> None:
        await asyncio.gather(agent(1, 3000, 6), agent(2, None, 6))

    run_virtual(main(), clock)
    assert window_max(rec.calls, "tokens", agent="agent1") <= 3000
    # the quota is checked against the reservation (1500 a call): two calls per window
    assert [c.stamp for c in rec.calls if c.agent == "agent1"] == [0, 1, 60, 61, 120, 121]
    # the other agent was never held back by agent1's quota
    assert [c.stamp for c in rec.calls if c.agent == "agent2"] == [0, 1, 2, 3, 4, 5]


def test_oversize_requests_fail_fast():
    s, clock = make(Budget(input_tokens_per_minute=10_000, output_tokens_per_minute=4000))

    async def main() -> None:
        with pytest.raises(RequestTooLarge, match="input_tokens_per_minute is 10000"):
            await s.admit(T(1, est_input_tokens=10_001))
        with pytest.raises(RequestTooLarge, match="output_tokens_per_minute"):
            await s.admit(T(1, max_tokens=4001))
        with pytest.raises(RequestTooLarge, match="may use 1000 tokens per minute"):
            await s.admit(T(1, agent_tokens_per_minute=1000))
        assert clock.now() == 0.0
        # a small call behind a large (but admissible) one is not starved for ever
        big = await s.admit(T(1, est_input_tokens=9000))
        small = await asyncio.wait_for(s.admit(T(2, est_input_tokens=2000)), timeout=61)
        assert small.admitted_at == 60.0
        del big

    run_virtual(main(), clock)


def test_budget_update_applies_at_once():
    s, clock = make(Budget(requests_per_minute=1, input_tokens_per_minute=10_000))

    async def main() -> None:
        await s.admit(T(1))
        waiting = [asyncio.create_task(s.admit(T(i))) for i in (2, 3)]
        await asyncio.sleep(5)
        assert not any(t.done() for t in waiting)
        s.update_budget(Budget(requests_per_minute=10, input_tokens_per_minute=2500))
        await asyncio.sleep(0)
        assert waiting[0].done() and waiting[0].result().admitted_at == 5.0
        assert s.wait_reason(3) == "budget: input tokens per minute"
        # lowering a limit below a waiting call makes that call fail, not hang
        s.update_budget(Budget(input_tokens_per_minute=500))
        with pytest.raises(RequestTooLarge):
            await waiting[1]
        assert s.wait_reason(3) is None

    run_virtual(main(), clock)


def test_cancelling_a_waiter_removes_it_cleanly():
    changes: list[tuple[int, str | None]] = []
    s, clock = make(Budget(max_concurrent=1, input_tokens_per_minute=10_000),
                    on_wait_change=lambda pid, why: changes.append((pid, why)))

    async def main() -> None:
        r1 = await s.admit(T(1))
        t2 = asyncio.create_task(s.admit(T(2)))
        t3 = asyncio.create_task(s.admit(T(3)))
        await asyncio.sleep(1)
        assert s.wait_reason(2) == "budget: max concurrent calls"
        t2.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t2
        assert s.wait_reason(2) is None and s.report()["waiting"][0]["pid"] == 3
        # granted and cancelled in the same instant: the reservation is released
        s.settle(r1, Usage(input_tokens=1000, output_tokens=10))
        assert s.ledger.in_flight() == 1 and not t3.done()  # granted, task not resumed yet
        t3.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t3
        assert s.ledger.in_flight() == 0
        assert s.ledger.used("input_tokens") == 1000  # only r1's real usage
        # a cancelled head waiter no longer blocks the ones behind it
        big = asyncio.create_task(s.admit(T(4, est_input_tokens=9500)))
        small = asyncio.create_task(s.admit(T(5, est_input_tokens=100)))
        await asyncio.sleep(1)
        assert not small.done()
        big.cancel()
        r5 = await small
        assert r5.admitted_at == clock.now()

    run_virtual(main(), clock)
    assert (2, "budget: max concurrent calls") in changes and (2, None) in changes
    assert changes[-1] == (5, None)


def test_wait_reasons_and_report():
    s, clock = make(Budget(requests_per_minute=1, usd_per_day=100))

    async def main() -> None:
        await s.admit(T(1))
        t = asyncio.create_task(s.admit(T(2, priority="background")))
        await asyncio.sleep(0)
        assert s.wait_reason(2) == "budget: requests per minute"
        rep = s.report()
        assert rep["waiting"] == [{"pid": 2, "agent": "agent2", "priority": "background",
                                   "reason": "budget: requests per minute", "waited": 0.0}]
        assert rep["spend"]["usd_per_day"] == 100 and rep["spend"]["usd_today"] == 0
        assert rep["spend"]["usd_today_booked"] > 0  # the open call at its worst case
        assert rep["policy"] == "fair" and rep["window_seconds"] == 60.0
        await t

    run_virtual(main(), clock)


def test_a_broken_wait_listener_does_not_break_admission():
    def boom(pid: int, why: str | None) -> None:
        raise RuntimeError("listener bug")

    s, clock = make(Budget(max_concurrent=1), on_wait_change=boom)

    async def main() -> None:
        r1 = await s.admit(T(1))
        t2 = asyncio.create_task(s.admit(T(2)))
        await asyncio.sleep(1)
        s.settle(r1, Usage(input_tokens=10))
        assert (await t2).admitted_at == 1.0
        s.forget(1)
        assert s.preempt_wanted(1) is False

    run_virtual(main(), clock)


def test_input_known_at_the_stream_start_frees_the_estimate_before_the_call_ends():
    s, clock = make(Budget(input_tokens_per_minute=5000))

    async def main() -> None:
        r1 = await s.admit(T(1, est_input_tokens=4000, max_tokens=100))
        waiter = asyncio.create_task(s.admit(T(2, est_input_tokens=2000, max_tokens=100)))
        await asyncio.sleep(1)
        assert not waiter.done()
        s.settle_input(r1, 300)  # mostly a cache read: the provider counted 300
        assert s.ledger.used("input_tokens") == 2300
        r2 = await waiter
        assert r2.admitted_at == 1.0
        s.settle(r1, Usage(input_tokens=100, cache_creation_input_tokens=200, output_tokens=50))
        assert s.ledger.used("input_tokens") == 2300
        s.settle(r2, Usage(input_tokens=2000, output_tokens=50))

    run_virtual(main(), clock)


def test_input_above_the_estimate_is_booked_at_the_stream_start_and_holds_later_calls():
    s, clock = make(Budget(input_tokens_per_minute=5000))

    async def main() -> None:
        r1 = await s.admit(T(1, est_input_tokens=1000, max_tokens=100))
        s.settle_input(r1, 4500)  # a cache miss: the provider counted far more
        assert s.ledger.used("input_tokens") == 4500
        assert s.report()["underestimated_input_tokens"] == 3500
        waiter = asyncio.create_task(s.admit(T(2, est_input_tokens=1000, max_tokens=100)))
        await asyncio.sleep(30)
        assert not waiter.done()   # 4500 + 1000 would exceed 5000
        s.settle(r1, Usage(input_tokens=4500, output_tokens=50))
        assert s.ledger.used("input_tokens") == 4500
        r2 = await waiter
        assert r2.admitted_at == s.window   # when r1's entry left the window
        s.settle(r2, Usage(input_tokens=1000, output_tokens=50))

    run_virtual(main(), clock)
