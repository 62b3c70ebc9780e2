import asyncio
import time

import pytest

from kernel.sched import SystemClock, VirtualClock, VirtualDeadlock, run_virtual


def test_autojump_runs_an_hour_instantly_and_in_order():
    clock = VirtualClock()
    order: list[tuple[str, float]] = []

    async def sleeper(name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        order.append((name, clock.now()))

    async def main() -> None:
        await asyncio.gather(sleeper("c", 3600), sleeper("a", 1.5), sleeper("b", 60))

    started = time.perf_counter()
    run_virtual(main(), clock)
    assert time.perf_counter() - started < 1.0
    assert order == [("a", 1.5), ("b", 60.0), ("c", 3600.0)]


def test_sleep_until_lands_exactly_on_the_deadline():
    clock = VirtualClock(start=10.0)

    async def main() -> float:
        t = 10.0 + 0.1 + 60.0  # a float that asyncio arithmetic could blur
        await clock.sleep_until(t)
        assert clock.now() == t
        await clock.sleep_until(t - 5)  # already due: returns at once
        return clock.now()

    assert run_virtual(main(), clock) == 10.0 + 0.1 + 60.0


def test_wall_follows_virtual_time_and_can_jump():
    clock = VirtualClock(wall_origin=1_000_000.0)
    clock.advance(90)
    assert clock.now() == 90 and clock.wall() == 1_000_090.0
    clock.set_wall(5.0)
    assert clock.wall() == 5.0 and clock.now() == 90
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_manual_mode_moves_only_when_advanced():
    clock = VirtualClock(autojump=False)
    woke: list[float] = []

    async def main() -> None:
        async def sleeper() -> None:
            await asyncio.sleep(30)
            woke.append(clock.now())
        task = asyncio.create_task(sleeper())
        await asyncio.sleep(0)
        clock.advance(29)
        await asyncio.sleep(0)
        assert woke == []
        clock.advance(1)
        await task
        assert woke == [30.0]

    run_virtual(main(), clock)


def test_deadlock_is_reported_not_hung():
    clock = VirtualClock(deadlock_timeout=0.05)

    async def main() -> None:
        await asyncio.get_running_loop().create_future()  # nobody will ever set it

    with pytest.raises(VirtualDeadlock):
        run_virtual(main(), clock)


def test_virtual_sleep_needs_its_loop():
    with pytest.raises(RuntimeError, match="run_virtual"):
        asyncio.run(VirtualClock().sleep_until(1.0))


def test_system_clock_sleeps_until():
    clock = SystemClock()

    async def main() -> None:
        target = clock.now() + 0.02
        await clock.sleep_until(target)
        assert clock.now() >= target

    asyncio.run(main())
    assert abs(clock.wall() - time.time()) < 1


def test_both_clocks_satisfy_the_protocol():
    from kernel.sched import Clock
    assert isinstance(SystemClock(), Clock) and isinstance(VirtualClock(), Clock)
