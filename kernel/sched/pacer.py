"""Pacing: spread admissions over the minute instead of bursting at window edges.

Used for non-interactive calls of an agent ahead of its fair share, and for
every non-interactive call while a person is using DeskPilot (see
:mod:`kernel.sched.limits`); otherwise calls go as fast as the window allows.

Why: a rolling window refills exactly as it was filled 60 s earlier, so a
greedy scheduler replays its first burst for ever -- whoever was waiting at
the refill gets it, and the policy never gets a real choice (weights would not
matter).  A token bucket per limited dimension, refilled at ``limit`` per
``period`` (the scheduler's window) and holding at most ``burst`` x ``limit``,
makes admissions one at a time once the budget is saturated, so each one goes
to the waiter first in policy order.  It costs little throughput (under
saturation it admits about the limit per window; measured 96-98 % of it), and
the rolling window remains the hard guarantee.  Unsaturated bursts up to
``burst`` x ``limit`` pass at once.

While calls wait because the window itself is full, the bucket does not
fill up (the scheduler clamps it to the window's room just before each entry
leaves the window), so the refill that comes when old entries expire is
paced too instead of replayed as a burst.

A call larger than the bucket is admitted when the bucket is full and leaves
it in debt, so any call that fits the window can pass.  Settlement credits
back what a call did not use.  The interactive class is not held by the pacer
(it is debited, so background work slows down after it).
"""
from __future__ import annotations

from dataclasses import dataclass

_EPS = 1e-6


@dataclass
class _Bucket:
    level: float
    at: float
    cap: float


class Pacer:
    """One token bucket per dimension; limits are passed in on every use."""

    def __init__(self, burst: float = 0.25, period: float = 60.0) -> None:
        if not 0.0 < burst:
            raise ValueError("burst must be > 0")
        self.burst = burst
        self.period = period
        self._buckets: dict[str, _Bucket] = {}

    def _level(self, dim: str, now: float, limit: int | None,
               headroom: float | None = None) -> float | None:
        if limit is None:
            self._buckets.pop(dim, None)
            return None
        cap = limit * self.burst
        b = self._buckets.get(dim)
        if b is None:
            b = self._buckets[dim] = _Bucket(cap, now, cap)
        elif b.cap != cap:  # the limit changed: the room changes by as much, at once
            b.level += cap - b.cap
            b.cap = cap
        b.level = min(cap, b.level + max(0.0, now - b.at) * limit / self.period)
        if headroom is not None:
            b.level = min(b.level, max(0.0, headroom))
        b.at = now
        return b.level

    def ready_at(self, dim: str, now: float, limit: int | None, need: int) -> float:
        """When ``need`` may go (``now`` if it may go now)."""
        level = self._level(dim, now, limit)
        if level is None or limit is None or need <= 0:
            return now
        want = min(float(need), limit * self.burst)
        if level + _EPS >= want:
            return now
        return now + (want - level) / (limit / self.period)

    def debit(self, dim: str, now: float, limit: int | None, amount: int) -> None:
        if self._level(dim, now, limit) is not None:
            self._buckets[dim].level -= amount

    def credit(self, dim: str, now: float, limit: int | None, amount: int) -> None:
        level = self._level(dim, now, limit)
        if level is not None and limit is not None and amount > 0:
            self._buckets[dim].level = min(limit * self.burst, level + amount)

    def clamp(self, dim: str, t: float, limit: int | None, headroom: float) -> None:
        """At time ``t`` the window had only ``headroom`` left: the bucket holds no more."""
        self._level(dim, t, limit, headroom)

    def level(self, dim: str, now: float, limit: int | None) -> float | None:
        return self._level(dim, now, limit)
