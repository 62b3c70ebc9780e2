"""Test helpers: run agents against a Scheduler in virtual time and check the windows."""
from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from kernel.sched import Reservation, Scheduler, Ticket, Usage

UTC = timezone.utc


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@dataclass
class Call:
    """One admitted call as the provider would see it."""

    pid: int
    agent: str
    priority: str
    stamp: float
    requests: int
    input_tokens: int
    output_tokens: int
    waited: float
    closed_at: float | None = None


@dataclass
class Recorder:
    """Makes calls through the scheduler and records what was admitted, and when."""

    sched: Scheduler
    calls: list[Call] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    async def call(self, ticket: Ticket, duration: float = 1.0, usage: Usage | None = None,
                   *, abandon: bool | None = None) -> Reservation:
        """Admit ``ticket``, 'run' it for ``duration``, then settle (or abandon)."""
        res = await self.sched.admit(ticket)
        now = self.sched.clock.now()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        usage = usage or Usage(input_tokens=ticket.est_input_tokens,
                               output_tokens=ticket.max_tokens // 2)
        call = Call(ticket.pid, ticket.agent, ticket.priority, now, 1,
                    usage.counted_input_tokens, usage.output_tokens, res.waited)
        self.calls.append(call)
        try:
            await asyncio.sleep(duration)
        finally:
            self.in_flight -= 1
            call.closed_at = self.sched.clock.now()
        if abandon is None:
            self.sched.settle(res, usage)
        else:
            call.output_tokens = 0
            if not abandon:
                call.requests = call.input_tokens = 0
            self.sched.abandon(res, reached_provider=abandon)
        return res

    def tokens_by_agent(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.calls:
            out[c.agent] = out.get(c.agent, 0) + c.input_tokens + c.output_tokens
        return out


def window_max(calls: Iterable[Call], attr: str, window: float = 60.0,
               agent: str | None = None) -> int:
    """Largest total of ``attr`` in any window [t, t + window) (worst windows start at a stamp)."""
    rows = sorted((c.stamp, (c.input_tokens + c.output_tokens) if attr == "tokens"
                   else getattr(c, attr)) for c in calls if agent is None or c.agent == agent)
    best = 0
    for i, (start, _) in enumerate(rows):
        total = 0
        for t, amount in rows[i:]:
            if t >= start + window:
                break
            total += amount
        best = max(best, total)
    return best


def jain(xs: Iterable[float]) -> float:
    xs = list(xs)
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs))
