"""Clocks for the inference scheduler: the one narrow gate through which it waits.

The scheduler never calls ``time.monotonic``, ``time.time`` or ``asyncio.sleep``
itself.  It reads time through :meth:`Clock.now` (monotonic seconds, for rolling
windows and back-offs) and :meth:`Clock.wall` (epoch seconds, for the day and
month of spend caps), and it waits only through :meth:`Clock.sleep_until`.
Injecting a :class:`VirtualClock` therefore runs the scheduler in virtual time,
deterministically, as Trio's ``MockClock`` does for Trio's run loop.

:class:`VirtualClock` drives an asyncio event loop whose ``time()`` is the
virtual time.  With ``autojump`` on, whenever every task is blocked (no ready
callback, no pending I/O) the loop jumps straight to its next timer instead of
sleeping: a test of a minute of traffic runs in milliseconds, and the order of
events depends only on the program, never on the machine's speed.  The jump
lands *exactly* on the timer's deadline, so a deadline computed as
``stamp + window`` compares equal to ``now`` when it fires (no float drift).
"""
from __future__ import annotations

import asyncio
import logging
import selectors
import time
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar, runtime_checkable

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Default virtual wall-clock origin: 2026-01-15 12:00:00 UTC (mid-month, mid-day).
DEFAULT_WALL_ORIGIN = 1768478400.0


@runtime_checkable
class Clock(Protocol):
    """Time as the scheduler sees it."""

    def now(self) -> float:
        """Monotonic seconds; never goes backwards."""

    def wall(self) -> float:
        """Epoch seconds (may jump); only used to tell which day / month it is."""

    async def sleep_until(self, t: float) -> None:
        """Return once ``now() >= t`` (at once if that already holds)."""


class SystemClock:
    """The real clock: ``time.monotonic`` / ``time.time`` / ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep_until(self, t: float) -> None:
        # asyncio may fire a timer up to one clock resolution early: loop until due.
        while (delay := t - self.now()) > 0:
            await asyncio.sleep(delay)


class VirtualDeadlock(RuntimeError):
    """Every task is blocked and no timer or I/O can ever wake one up."""


class VirtualClock:
    """Virtual time for tests; see the module docstring.

    ``now()`` starts at ``start`` and moves only by :meth:`advance` or, with
    ``autojump``, when the event loop from :meth:`new_event_loop` /
    :func:`run_virtual` finds every task blocked.  ``wall()`` is
    ``wall_origin + (now() - start)``.

    ``deadlock_timeout`` is how many *real* seconds the loop waits for outside
    I/O (e.g. a thread calling ``call_soon_threadsafe``) when nothing can move
    virtual time, before raising :class:`VirtualDeadlock` rather than hanging.
    """

    def __init__(self, start: float = 0.0, *, wall_origin: float = DEFAULT_WALL_ORIGIN,
                 autojump: bool = True, deadlock_timeout: float = 5.0) -> None:
        self._start = float(start)
        self._now = float(start)
        self.wall_origin = float(wall_origin)
        self.autojump = autojump
        self.deadlock_timeout = deadlock_timeout

    def __repr__(self) -> str:
        return f"<VirtualClock now={self._now:.6f} autojump={self.autojump}>"

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self.wall_origin + (self._now - self._start)

    def advance(self, seconds: float) -> None:
        """Move virtual time forward; due timers run at the loop's next iteration."""
        if seconds < 0:
            raise ValueError("time can't go backwards")
        self._now += seconds

    def set_wall(self, wall: float) -> None:
        """Make ``wall()`` read ``wall`` now, without moving monotonic time (a wall-clock jump)."""
        self.wall_origin = wall - (self._now - self._start)

    def _jump_to(self, t: float) -> None:
        if t > self._now:
            self._now = t

    async def sleep_until(self, t: float) -> None:
        loop = asyncio.get_running_loop()
        if getattr(loop, "_virtual_clock", None) is not self:
            raise RuntimeError("VirtualClock.sleep_until must run in the loop from "
                               "VirtualClock.new_event_loop() or run_virtual()")
        if t <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = loop.create_future()
        handle = loop.call_at(t, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            handle.cancel()

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """An asyncio event loop that runs in this clock's virtual time."""
        return _VirtualLoop(self)


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc, valid-type]
    """Real selector for real file descriptors; virtual time instead of blocking."""

    loop: "_VirtualLoop"

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = super().select(0)
        if events or (timeout is not None and timeout <= 0):
            return events
        clock = self.loop._virtual_clock
        scheduled = self.loop._scheduled  # heap of TimerHandle; head is not cancelled here
        if clock.autojump and scheduled:
            clock._jump_to(scheduled[0].when())
            return []
        # Nothing can move virtual time: only outside I/O could wake a task up.
        events = super().select(clock.deadlock_timeout)
        if not events:
            what = ("every task is blocked and autojump is off (call clock.advance())"
                    if scheduled else "every task is blocked forever (no timer, no I/O)")
            raise VirtualDeadlock(f"virtual time at {clock.now():.3f}: {what}")
        return events


class _VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: VirtualClock) -> None:
        selector = _VirtualSelector()
        self._virtual_clock = clock
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self._virtual_clock.now()


def run_virtual(coro: Coroutine[Any, Any, T], clock: VirtualClock | None = None) -> T:
    """Run ``coro`` to completion in virtual time (like ``asyncio.run``).

    Without ``clock`` a fresh autojumping :class:`VirtualClock` is used; pass one
    to share it with the code under test.
    """
    clock = clock if clock is not None else VirtualClock()
    with asyncio.Runner(loop_factory=clock.new_event_loop) as runner:
        return runner.run(coro)
