"""The inference scheduler: who gets the next model call, and when.

Every model call is admitted here first (:meth:`Scheduler.admit`), by
reservation: estimated input tokens + ``max_tokens`` output tokens + the
worst-case cost are booked in the ledger at admission and replaced by the
actual usage at :meth:`Scheduler.settle`.

INVARIANT (tested by a property test): no rolling window of ``window`` seconds
(60 s + ``window_margin``, so also no 60 s window) ever holds more requests,
input tokens (uncached + cache writes) or output tokens than a configured
limit, and no agent more than its ``agent_tokens_per_minute`` -- provided the
input estimates are not below the real input (output can never exceed its
reservation, ``max_tokens``).  Holds because (1) a call is admitted only if
its whole reservation fits every window that contains *now* (all existing
stamps are <= now, so that is the window ending now), and (2) settlement only
shrinks an entry.  Likewise ``max_concurrent`` is never exceeded, and money
booked in a day / month (closed costs + worst case of open calls) never
exceeds its cap at any admission.

All decisions happen in one synchronous method, :meth:`_pump`, run on every
state change (admit, settle, abandon, cancel, budget change, provider
headers, 429) and from one timer task that sleeps through ``clock.sleep_until``
until the earliest moment something could fit -- the single gate through
which the scheduler waits, so a :class:`VirtualClock` makes it deterministic.
Not thread-safe: call every method from the event loop's thread.

Pacing (:mod:`kernel.sched.pacer`) holds non-interactive admissions to the
limit's own rate beyond a burst, so room comes back to the window evenly: each
admission is a real choice made by the policy, and a person finds room (see
:mod:`kernel.sched.limits` and the pacer for why a bare rolling window fails
both).

Ordering: strict priority classes (interactive > normal > background > idle);
within a class by ``budget.policy`` (see :mod:`kernel.sched.policy`).  The first
waiter in order blocked by a *shared* resource blocks everyone after it (no
overtaking: a big call is never starved by small ones, and it waits about
one window at most, because calls larger than a window limit fail fast with
:class:`RequestTooLarge`).  A waiter blocked only by its own agent quota is
skipped, since it holds nothing the others need.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Callable, Mapping
from datetime import tzinfo
from typing import Any

from kernel.sched.budget import Budget, PriceTable, Usage
from kernel.sched.clock import Clock, SystemClock
from kernel.sched.ledger import Entry, Ledger, period_keys
from kernel.sched.limits import SHARED, WINDOW_LIMITS, AdmissionRules
from kernel.sched.pacer import Pacer
from kernel.sched.policy import FAIR_GRACE, FairShare, order_key
from kernel.sched.provider import ProviderLimits
from kernel.sched.tickets import PRIORITIES, RequestTooLarge, Reservation, Ticket

log = logging.getLogger(__name__)

WaitCallback = Callable[[int, "str | None"], None]


class _Waiter:
    __slots__ = ("fut", "kind", "reason", "seq", "since", "ticket")

    def __init__(self, ticket: Ticket, fut: asyncio.Future[Reservation], seq: int,
                 since: float) -> None:
        self.ticket, self.fut, self.seq, self.since = ticket, fut, seq, since
        self.reason: str | None = None
        self.kind: str | None = None   # "own" | "global" | "shared" | "window" | "queued"


class Scheduler(AdmissionRules):
    """Admits model calls against one :class:`Budget`; see the module docstring.

    ``tz`` is the time zone of the spend-cap day and month (None = local time).
    ``window_margin`` lengthens our rolling window beyond the provider's 60 s,
    so latency between admission and the provider receiving the call cannot
    make two calls fall in one provider window that ours saw apart.
    ``interactive_reserve`` (0..1) keeps that fraction of each rate limit for
    the interactive class, so a person's request need not wait for a window
    that background work filled (about one interactive call's tokens / the
    limit is enough; it costs the same fraction of utilisation).
    ``interactive_room`` caps (as a fraction of a limit) the room kept free
    for a person's next call while they are active; 0 turns it off (see
    :mod:`kernel.sched.limits`).  ``pace_rate`` and ``pace_burst``: the pacer's
    refill (times the window's average rate) and bucket size (a fraction of the
    limit); see :mod:`kernel.sched.pacer`.
    ``on_wait_change(pid, reason | None)`` is called when a pid starts
    waiting, its reason changes, or it stops waiting.
    """

    def __init__(self, budget: Budget | None = None, prices: PriceTable | None = None,
                 clock: Clock | None = None, *, tz: tzinfo | None = None,
                 window_margin: float = 1.0, interactive_reserve: float = 0.0,
                 interactive_room: float = 0.25, pace_rate: float = 1.0,
                 pace_burst: float = 0.25,
                 on_wait_change: WaitCallback | None = None) -> None:
        if not (0.0 <= interactive_reserve < 1.0 and 0.0 <= interactive_room < 1.0):
            raise ValueError("interactive_reserve and interactive_room must be in [0, 1)")
        self.budget = budget or Budget()
        self.prices = prices or PriceTable()
        self.clock: Clock = clock or SystemClock()
        self.tz = tz
        self.window = 60.0 + max(0.0, window_margin)
        self.interactive_reserve = interactive_reserve
        self.interactive_room = interactive_room
        self.on_wait_change = on_wait_change
        self.ledger = Ledger(self.window)
        self.provider = ProviderLimits()
        self.pacer = Pacer(self.window, pace_rate, pace_burst)
        self.rate_limited_count = 0
        self.underestimated_tokens = 0   # input booked at message_start beyond estimates
        self._pause_until = -math.inf
        self._interactive_at = -math.inf   # last time an interactive call arrived or ended
        self._person_need: dict[str, int] = {}   # what the last interactive call needed
        self._waiters: list[_Waiter] = []
        self._open: dict[int, tuple[Entry, float, int]] = {}  # id -> (entry, weight, rank)
        self.fair = FairShare()
        self._pid_rank: dict[int, int] = {}
        # agent -> (rank, when its last call ended); bounded by the number of agents
        self._last_done: dict[str, tuple[int, float]] = {}
        self._reasons: dict[int, str] = {}
        self._ids = itertools.count(1)
        self._seq = itertools.count()
        self._timer: asyncio.Task[None] | None = None
        self._timer_at = math.inf
        self._pumping = self._again = False
        self._period: tuple[str, str] | None = None

    # ------------------------------------------------------------------ admission

    async def admit(self, ticket: Ticket) -> Reservation:
        """Wait until ``ticket`` fits every limit, book it, and return its reservation.

        Raises :class:`RequestTooLarge` at once (or when a budget change makes it
        so) if the call can never fit.  Cancelling the awaiting task removes
        the waiter; a reservation granted in the same instant is released.
        """
        problem = self._too_large(ticket)
        if problem:
            raise RequestTooLarge(problem)
        self._pid_rank[ticket.pid] = ticket.rank
        if ticket.rank == 0:
            self._interactive_at, self._person_need = self.clock.now(), ticket.need
        self.fair.place(ticket, self._competing(ticket.rank))
        fut: asyncio.Future[Reservation] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(ticket, fut, next(self._seq), self.clock.now())
        self._waiters.append(waiter)
        self._pump()
        try:
            return await fut
        except asyncio.CancelledError:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.abandon(fut.result(), reached_provider=False)
            else:
                self._pump()
            raise

    def settle(self, reservation: Reservation, usage: Usage) -> None:
        """Replace the reservation by the call's actual ``usage``."""
        if (opened := self._pop(reservation, "settled")) is None:
            return
        entry, weight, _ = opened
        if (usage.counted_input_tokens > entry.input_tokens
                or usage.output_tokens > entry.output_tokens):
            log.warning("pid %d used %d input / %d output tokens, reserved %d / %d: the "
                        "estimate was low and a window may exceed its limit", entry.pid,
                        usage.counted_input_tokens, usage.output_tokens, entry.input_tokens,
                        entry.output_tokens)
        self._close(entry, weight, 1, usage)

    def settle_input(self, reservation: Reservation, counted_input_tokens: int) -> None:
        """The provider said how much input it counted (the stream's first event): book
        that at once instead of the estimate, rather than when the call ends.

        Less than reserved frees the rest at once.  More than reserved (a cache entry the
        provider dropped early, text denser than estimated) is booked too, so every later
        admission sees it: the window can then exceed its limit only by what the provider
        had already received beyond the estimate, never by a call admitted after."""
        opened = self._open.get(reservation.id)
        if opened is None:
            return
        entry, weight, _ = opened
        delta = counted_input_tokens - entry.input_tokens
        if delta == 0:
            return
        if delta > 0:
            log.info("pid %d: the provider counted %d input tokens, %d more than reserved; "
                     "booked", entry.pid, counted_input_tokens, delta)
            self.underestimated_tokens += delta
        self.ledger.set_input(entry, counted_input_tokens)
        now = self.clock.now()
        if delta < 0:
            self.pacer.credit("input_tokens", now, self._pace_limit("input_tokens"), -delta)
        else:
            self.pacer.debit("input_tokens", now, self._pace_limit("input_tokens"), delta)
        self.fair.adjust(entry.agent, delta, weight)
        self._pump()

    def abandon(self, reservation: Reservation, reached_provider: bool = False) -> None:
        """A call that failed without usage: free its output (and input unless it was sent).

        ``reached_provider``: the provider received the request and counts its
        input (a dropped stream, a 5xx after sending); then the input stays in
        the window and is billed as uncached input.  False for calls that were
        never sent (or refused with a 429).
        """
        if (opened := self._pop(reservation, "abandoned")) is None:
            return
        entry, weight, _ = opened
        usage = Usage(input_tokens=entry.input_tokens) if reached_provider else Usage()
        self._close(entry, weight, 1 if reached_provider else 0, usage)

    def _pop(self, reservation: Reservation, verb: str) -> tuple[Entry, float, int] | None:
        opened = self._open.pop(reservation.id, None)
        if opened is None:
            log.warning("reservation %d %s twice or unknown; ignored", reservation.id, verb)
        return opened

    def _close(self, entry: Entry, weight: float, requests: int, usage: Usage) -> None:
        reserved_in, reserved_out = entry.input_tokens, entry.output_tokens
        reserved = reserved_in + reserved_out
        cost = self.prices.cost(entry.model, usage)
        self.ledger.close(entry, requests=requests, usage=usage, usd=cost)
        now = self.clock.now()
        for dim, unused in (("requests", 1 - requests),
                            ("input_tokens", reserved_in - usage.counted_input_tokens),
                            ("output_tokens", reserved_out - usage.output_tokens)):
            self.pacer.credit(dim, now, self._pace_limit(dim), unused)
        self.fair.closed(entry.agent, reserved, usage.counted_input_tokens + usage.output_tokens,
                         weight)
        self._last_done[entry.agent] = (self._pid_rank.get(entry.pid, 1), now)
        if self._pid_rank.get(entry.pid) == 0:
            self._interactive_at = now
        self._pump()

    # ------------------------------------------------------------------ inputs

    def update_budget(self, budget: Budget) -> None:
        """Apply a new budget at once; waiters are re-evaluated (and may fail fast)."""
        log.info("budget changed: %s", budget.model_dump(exclude_none=True))
        self.budget = budget
        self._pump()

    def on_provider_headers(self, headers: Mapping[str, str]) -> None:
        """Learn the provider's limits from a response's ``anthropic-ratelimit-*`` headers."""
        now = self.clock.now()
        self._expire(now)
        used = {dim: self.ledger.used(dim) for dim, _, _ in WINDOW_LIMITS}
        if self.provider.observe(headers, now, self.clock.wall(), used):
            self._pump()

    def on_rate_limited(self, retry_after: float) -> None:
        """A 429: pause every admission for ``retry_after`` s (one back-off for all agents)."""
        self.rate_limited_count += 1
        until = self.clock.now() + max(0.0, float(retry_after))
        if until > self._pause_until:
            log.warning("provider rate limit: all admissions paused for %.1f s", retry_after)
            self._pause_until = until
            self._pump()

    def restore_spend(self, agent: str, wall: float, *, requests: int, usage: Usage,
                      usd: float) -> None:
        """Replay a call settled before a restart into its day and month, so spend caps
        hold across restarts."""
        day, month = period_keys(wall, self.tz)
        self.ledger.restore_closed(agent, day, month, requests=requests, usage=usage, usd=usd)

    def forget(self, pid: int) -> None:
        """Drop per-pid state of a process that ended (its waiters must be gone)."""
        self._pid_rank.pop(pid, None)

    # ------------------------------------------------------------------ queries

    def wait_reason(self, pid: int) -> str | None:
        """Why ``pid`` waits for admission (for ``agents list``); None if it does not."""
        return self._reasons.get(pid)

    def preempt_wanted(self, pid: int) -> bool:
        """True while a higher-class call waits for capacity ``pid``'s class could take.

        The kernel checks this at every syscall boundary and suspends the agent
        until it turns False.
        """
        rank = self._pid_rank.get(pid)
        if rank is None:
            return False
        return any(w.ticket.rank < rank and w.kind in (*SHARED, "queued") and not w.fut.done()
                   for w in self._waiters)

    def paused_for(self) -> float:
        """Seconds left of the provider back-off (0 if none)."""
        return max(0.0, self._pause_until - self.clock.now())

    def report(self) -> dict[str, Any]:
        """Usage per agent and in total, limits and their use, waiters (``budget show --json``)."""
        now, wall = self.clock.now(), self.clock.wall()
        self._expire(now)
        day, month = period_keys(wall, self.tz)
        out = self.ledger.report(day, month)
        limits = {key: {"limit": getattr(self.budget, key), "used": self.ledger.used(dim)}
                  for dim, key, _ in WINDOW_LIMITS}
        limits["max_concurrent"] = {"limit": self.budget.max_concurrent,
                                    "used": self.ledger.in_flight()}
        out.update({
            "budget": self.budget.model_dump(), "policy": self.budget.policy,
            "window_seconds": self.window, "limits": limits,
            "prices": self.prices.to_dict(),
            # usd_* = settled; *_booked adds the worst case of calls in flight (what caps check)
            "spend": {"day": day, "month": month,
                      "usd_today": round(self.ledger.spent("day", day, reserved=False), 6),
                      "usd_today_booked": round(self.ledger.spent("day", day), 6),
                      "usd_per_day": self.budget.usd_per_day,
                      "usd_this_month": round(self.ledger.spent("month", month, reserved=False), 6),
                      "usd_this_month_booked": round(self.ledger.spent("month", month), 6),
                      "usd_per_month": self.budget.usd_per_month},
            "paused_for": self.paused_for(), "rate_limited": self.rate_limited_count,
            "underestimated_input_tokens": self.underestimated_tokens,
            "provider": self.provider.report(now),
            "waiting": [{"pid": w.ticket.pid, "agent": w.ticket.agent,
                         "priority": w.ticket.priority, "reason": w.reason,
                         "waited": now - w.since} for w in self._waiters if not w.fut.done()],
        })
        return out

    # ------------------------------------------------------------------ decisions

    def _order_key(self, w: _Waiter) -> tuple[Any, ...]:
        t, policy = w.ticket, self.budget.policy
        cost = (self.prices.worst_case_cost(t.model, t.est_input_tokens, t.max_tokens)
                if policy == "cheapest" else 0.0)
        return order_key(t, w.seq, self.clock.now() - w.since, policy, cost, self.fair)

    def _competing(self, rank: int) -> set[str]:
        """Agents of class ``rank`` with a call waiting, in flight, or ended < FAIR_GRACE s ago."""
        since = self.clock.now() - FAIR_GRACE
        agents = {w.ticket.agent for w in self._waiters if w.ticket.rank == rank}
        agents |= {a for a, (r, t) in self._last_done.items() if r == rank and t >= since}
        return agents | {e.agent for e, _, r in self._open.values() if r == rank}

    def _grant(self, w: _Waiter, now: float, day: str, month: str) -> None:
        t = w.ticket
        cost = self.prices.worst_case_cost(t.model, t.est_input_tokens, t.max_tokens)
        rid = next(self._ids)
        entry = Entry(rid, t.pid, t.agent, t.model, now, day, month, t.est_input_tokens,
                      t.max_tokens, cost)
        self.ledger.add(entry)
        for dim, amount in t.need.items():
            self.pacer.debit(dim, now, self._pace_limit(dim), amount)
        self._open[rid] = (entry, t.weight, t.rank)
        self.fair.admitted(t.agent, t.tokens, t.weight)
        w.fut.set_result(Reservation(rid, t.pid, t.agent, t.model, t.priority,
                                     t.est_input_tokens, t.max_tokens, cost, now, now - w.since))

    def _pump(self) -> None:
        """Grant every waiter that fits, in order; note why the others wait; arm the timer."""
        if self._pumping:           # re-entered from a callback: run again after this pass
            self._again = True
            return
        self._pumping = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self._pump_once()
        finally:
            self._pumping = False

    def _pump_once(self) -> None:
        now, wall = self.clock.now(), self.clock.wall()
        self._expire(now)
        day, month = period_keys(wall, self.tz)
        if self._period != (day, month):
            self.ledger.forget_periods_before(day, month)
            self._period = (day, month)
        wake, blocker = math.inf, None
        pending = [w for w in self._waiters if not w.fut.done()]
        while pending and blocker is None:
            # pick the next in order afresh: a grant moves its pid's virtual time
            w = min(pending, key=self._order_key)
            pending.remove(w)
            if problem := self._too_large(w.ticket):
                w.fut.set_exception(RequestTooLarge(problem))
                continue
            reason, kind, at = self._check(w.ticket, now, wall, day, month)
            if reason is None:
                self._grant(w, now, day, month)
                continue
            w.reason, w.kind = reason, kind
            if at is not None:
                wake = min(wake, at)
            if kind != "own":   # it holds its place: nobody behind it may overtake
                blocker = w
        for w in pending:       # behind the blocker: order no longer matters
            if problem := self._too_large(w.ticket):
                w.fut.set_exception(RequestTooLarge(problem))
            elif blocker is not None:
                if blocker.kind == "global" or blocker.ticket.rank == w.ticket.rank:
                    w.reason = blocker.reason   # waiting for the same thing
                else:
                    w.reason = f"queued behind {PRIORITIES[blocker.ticket.rank]}"
                w.kind = "global" if blocker.kind == "global" else "queued"
        self._waiters = [w for w in self._waiters if not w.fut.done()]
        self._publish_reasons()
        self._arm(wake, now)

    def _publish_reasons(self) -> None:
        reasons: dict[int, str] = {}
        for w in sorted(self._waiters, key=lambda w: w.seq):
            if w.reason is not None:
                reasons.setdefault(w.ticket.pid, w.reason)
        old, self._reasons = self._reasons, reasons
        if self.on_wait_change is None:
            return
        for pid in sorted(set(old) | set(reasons)):
            if old.get(pid) != reasons.get(pid):
                try:
                    self.on_wait_change(pid, reasons.get(pid))
                except Exception:  # a broken listener must not break admission
                    log.exception("on_wait_change(%d) failed", pid)

    def _arm(self, wake: float, now: float) -> None:
        """Keep one timer task, asleep until the earliest time a waiter could fit."""
        if not self._waiters or wake == math.inf:
            if self._timer is not None:
                self._timer.cancel()
                self._timer, self._timer_at = None, math.inf
            return
        if wake <= now:  # cannot happen if the checks agree; never spin in place
            log.debug("scheduler wake-up %.9f not after now %.9f", wake, now)
            wake = now + 1e-3
        if self._timer is not None and not self._timer.done() and self._timer_at <= wake:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = self._waiters[0].fut.get_loop()
        self._timer_at = wake
        self._timer = loop.create_task(self._sleep_then_pump(wake))

    async def _sleep_then_pump(self, wake: float) -> None:
        await self.clock.sleep_until(wake)
        self._timer, self._timer_at = None, math.inf
        self._pump()
