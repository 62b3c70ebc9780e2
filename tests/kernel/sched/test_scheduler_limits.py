"""Spend caps, the provider's headers, and 429 storms."""
import asyncio

import pytest

from kernel.sched import Budget, RequestTooLarge, Scheduler, Usage, VirtualClock, run_virtual
from kernel.sched.ledger import next_period_start

from ._sim import UTC, Recorder, utc, window_max
from .test_scheduler_basic import T

SONNET_WORST = (10_000 * 3.75 + 1000 * 15) / 1e6   # 0.0525: the reservation of one call
SONNET_REAL = (10_000 * 3 + 500 * 15) / 1e6        # 0.0375: what it really costs


def spend_sched(budget: Budget, wall: float) -> tuple[Scheduler, VirtualClock]:
    clock = VirtualClock(wall_origin=wall)
    return Scheduler(budget, clock=clock, tz=UTC, window_margin=0), clock


def ticket(pid: int = 1):
    return T(pid, est_input_tokens=10_000, max_tokens=1000, model="claude-sonnet-4-5")


REAL = Usage(input_tokens=10_000, output_tokens=500)


def test_daily_cap_waits_for_the_day_to_turn():
    s, clock = spend_sched(Budget(usd_per_day=0.10), wall=utc(2026, 3, 10, 23, 0))

    async def main() -> None:
        r1 = await s.admit(ticket(1))
        # worst cases 0.0525 + 0.0525 > 0.10: the second waits while the first is open
        t2 = asyncio.create_task(s.admit(ticket(2)))
        await asyncio.sleep(1)
        assert s.wait_reason(2) == "spend cap: usd_per_day reached" and not t2.done()
        s.settle(r1, REAL)  # 0.0375 spent + 0.0525 reserved <= 0.10: admitted at once
        r2 = await t2
        assert r2.admitted_at == 1.0
        s.settle(r2, REAL)  # 0.075 spent today; one more call can never fit today
        r3 = await s.admit(ticket(3))
        midnight = utc(2026, 3, 11)
        assert clock.wall() == pytest.approx(midnight)
        assert r3.waited == pytest.approx(3600 - 1)
        rep = s.report()
        assert rep["spend"]["day"] == "2026-03-11"
        assert rep["agents"]["agent1"]["month"]["usd"] == pytest.approx(SONNET_REAL)

    run_virtual(main(), clock)


def test_raising_the_cap_admits_at_once_and_nothing_is_sent_meanwhile():
    # a cap of 0 stops all spending until the person raises it (a day turn does not help)
    s, clock = spend_sched(Budget(usd_per_day=0), wall=utc(2026, 3, 10, 8, 0))
    rec = Recorder(s)

    async def main() -> None:
        tasks = [asyncio.create_task(rec.call(ticket(i), duration=1, usage=REAL))
                 for i in range(3)]
        await asyncio.sleep(86_400)
        assert rec.calls == []
        assert s.wait_reason(0) == "spend cap: usd_per_day reached"
        s.update_budget(Budget(usd_per_day=1.0))
        await asyncio.gather(*tasks)

    run_virtual(main(), clock)
    assert [c.stamp for c in rec.calls] == [86_400.0] * 3
    assert s.report()["spend"]["usd_today"] == pytest.approx(3 * SONNET_REAL)


def test_a_call_dearer_than_the_whole_cap_waits_for_the_person_and_blocks_nobody():
    s, clock = spend_sched(Budget(usd_per_month=0.05), wall=utc(2026, 3, 10, 8, 0))

    async def main() -> None:
        dear = asyncio.create_task(s.admit(ticket(1)))
        await asyncio.sleep(0)
        assert s.wait_reason(1) == ("spend cap: a call may cost up to $0.0525, more than "
                                    "usd_per_month ($0.05); raise the cap")
        # a cheaper call (smaller max_tokens) is fine, and nobody was blocked meanwhile
        r = await s.admit(T(2, est_input_tokens=10_000, max_tokens=100, model="claude-sonnet-4-5"))
        assert r.admitted_at == 0.0
        await asyncio.sleep(3600)
        assert not dear.done()
        s.update_budget(Budget(usd_per_month=1.0))
        assert (await dear).admitted_at == 3600.0

    run_virtual(main(), clock)


def test_monthly_cap_ignores_the_day_turn_and_waits_for_the_month():
    start = utc(2026, 4, 29, 12, 0)
    s, clock = spend_sched(Budget(usd_per_month=0.06), wall=start)

    async def main() -> None:
        s.settle(await s.admit(ticket(1)), REAL)
        r = await s.admit(ticket(2))  # 0.0375 + 0.0525 > 0.06 until May
        assert clock.wall() == utc(2026, 5, 1)
        assert r.waited == utc(2026, 5, 1) - start

    run_virtual(main(), clock)
    assert next_period_start(start, "month", UTC) == utc(2026, 5, 1)


def test_a_429_storm_pauses_everyone_once():
    clock = VirtualClock()
    s = Scheduler(Budget(), clock=clock, window_margin=0)
    admitted: list[tuple[int, float]] = []
    seen: dict[str, object] = {}

    async def agent(pid: int) -> None:
        r = await s.admit(T(pid))
        admitted.append((pid, clock.now()))
        await asyncio.sleep(0.1 * pid)
        # the provider refuses every first attempt with retry-after 5..9.5 s
        s.on_rate_limited(5 + (pid % 10) * 0.5)
        s.abandon(r, reached_provider=False)
        r = await s.admit(T(pid))
        admitted.append((pid, clock.now()))
        s.settle(r, Usage(input_tokens=1000, output_tokens=10))

    async def watch() -> None:
        await asyncio.sleep(3)
        seen["reasons"] = {s.wait_reason(pid) for pid in range(10)}
        seen["paused_for"] = s.paused_for()

    async def main() -> None:
        await asyncio.gather(*(agent(pid) for pid in range(10)), watch())

    run_virtual(main(), clock)
    pause_end = max(0.1 * pid + 5 + (pid % 10) * 0.5 for pid in range(10))  # 0.9 + 9.5
    retries = [t for _, t in admitted[10:]]
    assert len(retries) == 10 and all(t == pytest.approx(pause_end) for t in retries)
    assert not [t for _, t in admitted if 0 < t < pause_end]
    assert s.rate_limited_count == 10
    assert seen["reasons"] == {"provider back-off"}
    assert seen["paused_for"] == pytest.approx(pause_end - 3)


def hdrs(kind: str, limit: int, remaining: int, reset: str = "2026-01-15T12:00:30Z"):
    return {f"Anthropic-RateLimit-{kind}-Limit": str(limit),
            f"anthropic-ratelimit-{kind}-remaining": str(remaining),
            f"anthropic-ratelimit-{kind}-reset": reset}


def test_provider_limits_are_learned_and_respected():
    clock = VirtualClock()  # wall origin 2026-01-15T12:00:00Z
    s = Scheduler(Budget(), clock=clock, window_margin=0)
    rec = Recorder(s)

    async def main() -> None:
        s.on_provider_headers(hdrs("input-tokens", 5000, 5000))
        with pytest.raises(RequestTooLarge, match="provider's input tokens per minute limit"):
            await s.admit(T(1, est_input_tokens=6000))
        await asyncio.gather(*(rec.call(T(i, est_input_tokens=2000), duration=1)
                               for i in range(6)))

    run_virtual(main(), clock)
    assert window_max(rec.calls, "input_tokens") <= 5000
    assert s.report()["provider"]["input_tokens"]["limit"] == 5000


def test_provider_usage_we_did_not_send_counts_until_reset():
    clock = VirtualClock()
    s = Scheduler(Budget(), clock=clock, window_margin=0)

    async def main() -> None:
        # another client used 6000 of 10000 input tokens; full again at 12:00:30
        s.on_provider_headers({**hdrs("input-tokens", 10_000, 4000),
                               **hdrs("requests", 50, 49)})
        r = await s.admit(T(1, est_input_tokens=3000))
        assert r.admitted_at == 0
        t = asyncio.create_task(s.admit(T(2, est_input_tokens=3000)))
        await asyncio.sleep(1)
        assert s.wait_reason(2) == "provider limit: input tokens per minute"
        assert (await t).admitted_at == 30.0
        # headers while our own calls are in flight do not invent external usage
        s.on_provider_headers(hdrs("input-tokens", 10_000, 7000))
        assert s.provider.external("input_tokens", clock.now())[0] == 0

    run_virtual(main(), clock)


def test_configured_limit_lower_than_provider_wins_and_vice_versa():
    clock = VirtualClock()
    s = Scheduler(Budget(requests_per_minute=100), clock=clock, window_margin=0)
    rec = Recorder(s)

    async def main() -> None:
        s.on_provider_headers(hdrs("requests", 3, 3))
        await asyncio.gather(*(rec.call(T(i), duration=0.1) for i in range(7)))

    run_virtual(main(), clock)
    assert window_max(rec.calls, "requests") <= 3
