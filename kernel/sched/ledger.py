"""The ledger: what was reserved and spent, in rolling windows and calendar periods.

Every admitted call is one :class:`Entry`, stamped with its admission time.
While the call is *open* the entry holds its reservation (estimated input
tokens, ``max_tokens`` output tokens, worst-case cost); settlement replaces
that by the actual usage *in place*, keeping the stamp, so the entry stays in
the same rolling window the provider counted it in (the provider charges a
request when it starts).

Invariants kept here:

* ``_sum[dim]`` == sum of ``entry.amount(dim)`` over the entries in the window
  (stamp + window > now after :meth:`expire`), globally and per agent.
* Input tokens are counted as Anthropic counts them toward its
  input-tokens-per-minute limit: uncached input + cache writes; cache reads not
  at all.
* An entry expires when ``stamp + window <= now`` -- the same float expression
  :meth:`fit_time` returns as a wake-up time, so waking at it always frees it.

Money: closed entries are added to per-agent totals of their admission day
and month (wall clock, in ``tz``); open entries count their worst-case cost
as *reserved* money of that day and month until they close.
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from kernel.sched.budget import Usage

log = logging.getLogger(__name__)

DIMS = ("requests", "input_tokens", "output_tokens")
#: ``tokens`` = input_tokens + output_tokens (for per-agent quotas).
TOKENS = "tokens"


def period_keys(wall: float, tz: tzinfo | None = None) -> tuple[str, str]:
    """``("YYYY-MM-DD", "YYYY-MM")`` of the wall time, in ``tz`` (None = local time)."""
    d = datetime.fromtimestamp(wall, tz)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}", f"{d.year:04d}-{d.month:02d}"


def next_period_start(wall: float, scope: str, tz: tzinfo | None = None) -> float:
    """Epoch seconds at which the day (``scope="day"``) or month after ``wall`` begins."""
    d = datetime.fromtimestamp(wall, tz)
    midnight = d.replace(hour=0, minute=0, second=0, microsecond=0)
    if scope == "day":
        nxt = datetime.fromordinal(midnight.toordinal() + 1).replace(tzinfo=midnight.tzinfo)
    elif scope == "month":
        y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        nxt = midnight.replace(year=y, month=m, day=1)
    else:
        raise ValueError(f"unknown period {scope!r}")
    return nxt.timestamp()


@dataclass(eq=False)
class Entry:
    """One admitted call.  Amounts are reservations while ``open``, actuals after."""

    id: int
    pid: int
    agent: str
    model: str
    stamp: float
    day: str
    month: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    requests: int = 1
    usage: Usage | None = None
    open: bool = True
    in_window: bool = True

    def amount(self, dim: str) -> int:
        if dim == TOKENS:
            return self.input_tokens + self.output_tokens
        return int(getattr(self, dim))


@dataclass
class Totals:
    """Closed (settled or abandoned) usage and money."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    usd: float = 0.0

    def add(self, requests: int, usage: Usage, usd: float) -> None:
        self.requests += requests
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cache_creation_input_tokens += usage.cache_creation_input_tokens
        self.cache_read_input_tokens += usage.cache_read_input_tokens
        self.usd += usd

    def merge(self, other: Totals) -> None:
        for name in ("requests", "input_tokens", "output_tokens",
                     "cache_creation_input_tokens", "cache_read_input_tokens", "usd"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "cache_creation_input_tokens": self.cache_creation_input_tokens,
                "cache_read_input_tokens": self.cache_read_input_tokens,
                "cached_tokens": self.cache_read_input_tokens,
                "counted_input_tokens": self.input_tokens + self.cache_creation_input_tokens,
                "usd": round(self.usd, 6)}


@dataclass
class _Window:
    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIMS, 0))

    def add(self, e: Entry, sign: int) -> None:
        for dim in DIMS:
            self.sums[dim] += sign * e.amount(dim)


class Ledger:
    """Rolling windows of ``window`` seconds plus day / month spend."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self._entries: deque[Entry] = deque()   # in the window, oldest first
        self._total = _Window()
        self._by_agent: dict[str, _Window] = {}
        self._open: dict[int, Entry] = {}
        # (scope, key) -> agent -> closed totals
        self._closed: dict[tuple[str, str], dict[str, Totals]] = {}
        self._all_time: dict[str, Totals] = {}

    # ------------------------------------------------------------------ changes

    def add(self, e: Entry) -> None:
        """Record a new reservation; ``e.stamp`` must not be older than any entry's."""
        if self._entries and e.stamp < self._entries[-1].stamp:
            raise ValueError("ledger entries must be added in time order")
        self._entries.append(e)
        self._total.add(e, +1)
        self._by_agent.setdefault(e.agent, _Window()).add(e, +1)
        self._open[e.id] = e

    def close(self, e: Entry, *, requests: int, usage: Usage, usd: float) -> None:
        """Replace ``e``'s reservation by what it really used (settle or abandon)."""
        if not e.open:
            raise ValueError(f"ledger entry {e.id} is already closed")
        if e.in_window:
            self._total.add(e, -1)
            self._by_agent[e.agent].add(e, -1)
        e.requests, e.usage, e.cost_usd, e.open = requests, usage, usd, False
        e.input_tokens, e.output_tokens = usage.counted_input_tokens, usage.output_tokens
        if e.in_window:
            self._total.add(e, +1)
            self._by_agent[e.agent].add(e, +1)
        del self._open[e.id]
        for scope, key in (("day", e.day), ("month", e.month)):
            self._closed.setdefault((scope, key), {}).setdefault(e.agent, Totals()).add(
                requests, usage, usd)
        self._all_time.setdefault(e.agent, Totals()).add(requests, usage, usd)

    def set_input(self, e: Entry, input_tokens: int) -> None:
        """An open entry's input is known before the call ends: book that instead."""
        if not e.open or input_tokens == e.input_tokens:
            return
        if e.in_window:
            self._total.add(e, -1)
            self._by_agent[e.agent].add(e, -1)
        e.input_tokens = input_tokens
        if e.in_window:
            self._total.add(e, +1)
            self._by_agent[e.agent].add(e, +1)

    def expire(self, now: float, before: Callable[[Entry, float], None] | None = None) -> None:
        """Drop entries whose window has passed (``stamp + window <= now``).

        ``before(entry, t)`` is called for each, oldest first, while the sums
        still include it; ``t`` is the moment it left the window.
        """
        while self._entries and self._entries[0].stamp + self.window <= now:
            if before is not None:
                before(self._entries[0], self._entries[0].stamp + self.window)
            e = self._entries.popleft()
            self._total.add(e, -1)
            self._by_agent[e.agent].add(e, -1)
            e.in_window = False

    def restore_closed(self, agent: str, day: str, month: str, *, requests: int, usage: Usage,
                       usd: float) -> None:
        """Count a call a previous run settled toward its day and month (not the window:
        after a restart the provider's own headers tell what its window still holds)."""
        for scope, key in (("day", day), ("month", month)):
            self._closed.setdefault((scope, key), {}).setdefault(agent, Totals()).add(
                requests, usage, usd)
        self._all_time.setdefault(agent, Totals()).add(requests, usage, usd)

    def forget_periods_before(self, day: str, month: str) -> None:
        """Drop closed totals of days / months before the current ones (memory bound)."""
        for scope, key in list(self._closed):
            if key < (day if scope == "day" else month):
                del self._closed[(scope, key)]

    # ------------------------------------------------------------------ queries

    def used(self, dim: str, agent: str | None = None) -> int:
        """Amount of ``dim`` in the window (call :meth:`expire` first)."""
        if agent is None:
            w = self._total
        else:
            w = self._by_agent.get(agent) or _Window()
        if dim == TOKENS:
            return w.sums["input_tokens"] + w.sums["output_tokens"]
        return w.sums[dim]

    def fit_time(self, now: float, dim: str, need: int, limit: int, *, agent: str | None = None,
                 extra: int = 0, extra_until: float | None = None) -> float | None:
        """Earliest time ``>= now`` at which ``need`` more of ``dim`` fits under ``limit``.

        Assumes nothing else is added meanwhile (reservations only shrink, so
        the answer is never too late by more than a pump).  ``extra`` counts
        as usage until ``extra_until`` (``None`` = for ever).  ``None`` if it
        can never fit.
        """
        if need > limit:
            return None
        used = self.used(dim, agent) + extra
        if used + need <= limit:
            return now
        events: list[tuple[float, int]] = [
            (e.stamp + self.window, e.amount(dim)) for e in self._entries
            if agent is None or e.agent == agent]
        if extra and extra_until is not None:
            events.append((extra_until, extra))
            events.sort(key=lambda ev: ev[0])
        for t, amount in events:
            used -= amount
            if used + need <= limit:
                return max(t, now)
        return None

    def open_entries(self) -> Iterable[Entry]:
        return self._open.values()

    def in_flight(self) -> int:
        return len(self._open)

    def spent(self, scope: str, key: str, *, reserved: bool = True) -> float:
        """Money of the period: closed costs plus (``reserved``) worst case of open calls."""
        closed = sum(t.usd for t in self._closed.get((scope, key), {}).values())
        if not reserved:
            return closed
        return closed + sum(e.cost_usd for e in self._open.values()
                            if (e.day if scope == "day" else e.month) == key)

    # ------------------------------------------------------------------ report

    def report(self, day: str, month: str) -> dict[str, Any]:
        """Per agent and in total: this minute, today, this month, since start.

        ``minute`` counts the window as the limits see it (open calls at their
        reservation); the periods count closed calls, plus ``reserved_usd`` of
        open ones.  ``input_tokens`` is uncached input as the API reports it;
        ``counted_input_tokens`` adds cache writes, as input limits count.
        """
        agents = set(self._by_agent) | set(self._all_time)
        minute: dict[str, Totals] = {a: Totals() for a in agents}
        for e in self._entries:
            u = e.usage or Usage(input_tokens=e.input_tokens, output_tokens=e.output_tokens)
            minute[e.agent].add(e.requests, u, e.cost_usd)
        reserved: dict[str, float] = dict.fromkeys(agents, 0.0)
        open_count: dict[str, int] = dict.fromkeys(agents, 0)
        for e in self._open.values():
            reserved[e.agent] += e.cost_usd
            open_count[e.agent] += 1
        out: dict[str, Any] = {}
        totals = {name: Totals() for name in ("minute", "today", "month", "total")}
        for a in sorted(agents):
            rows = {"minute": minute[a],
                    "today": self._closed.get(("day", day), {}).get(a, Totals()),
                    "month": self._closed.get(("month", month), {}).get(a, Totals()),
                    "total": self._all_time.get(a, Totals())}
            for name, t in rows.items():
                totals[name].merge(t)
            out[a] = {name: t.as_dict() for name, t in rows.items()}
            out[a]["in_flight"] = open_count[a]
            out[a]["reserved_usd"] = round(reserved[a], 6)
        total_row: dict[str, Any] = {name: t.as_dict() for name, t in totals.items()}
        total_row["in_flight"] = len(self._open)
        total_row["reserved_usd"] = round(sum(reserved.values()), 6)
        total_row["window_used"] = {dim: self._total.sums[dim] for dim in DIMS}
        return {"agents": out, "totals": total_row}
