"""The admission rules: does a call fit every limit now, and if not, why and until when.

A mixin of :class:`kernel.sched.scheduler.Scheduler`, kept apart so the rules
can be read on their own.  Order of the checks (the first that fails is the
reason shown in ``agents list``):

1. the agent's own quota (kind ``own``: blocks only that agent's calls);
2. the provider back-off after a 429 and the spend caps (``global``);
3. ``max_concurrent`` (``shared``), our rolling windows and the provider's
   learned limits (``window``), and the pacer (``shared``) -- capacity every
   waiter competes for.  The pacer (:mod:`kernel.sched.pacer`) holds
   background and idle calls (normal ones only while a person is active or
   when ahead of their fair share) to the limit's own rate beyond a burst, so
   room comes back to the window continuously instead of in lumps.

While a person is active (an interactive call within ``PERSON_RECENT`` s) the
other classes are also kept out of the room the person's next two calls need
(twice the size of their last one, at most ``interactive_room`` of a limit), so
the next call is admitted at once even if nothing has left the window since the
last one.  That room costs its size in utilisation while the person is active;
with prompt caching a person's calls count only their new text, so it is small.

A call that could never fit (larger than a whole window limit or its agent's
quota) is refused with :class:`RequestTooLarge` instead of waiting for ever and
blocking the queue. Spend caps are different: the call waits, with the reason
shown, until the period turns or the person raises the cap.
"""
from __future__ import annotations

from datetime import tzinfo

from kernel.sched.budget import Budget, PriceTable
from kernel.sched.ledger import TOKENS, Ledger, next_period_start
from kernel.sched.pacer import Pacer
from kernel.sched.policy import FAIR_SLACK_CALLS, FairShare
from kernel.sched.provider import ProviderLimits
from kernel.sched.tickets import RANK, Ticket

#: (ledger dimension, budget key, label in reasons)
WINDOW_LIMITS = (("requests", "requests_per_minute", "requests per minute"),
                 ("input_tokens", "input_tokens_per_minute", "input tokens per minute"),
                 ("output_tokens", "output_tokens_per_minute", "output tokens per minute"))
KEY = {dim: key for dim, key, _ in WINDOW_LIMITS}
#: Longest sleep toward a wall-clock event (day / month turn): the wall clock
#: may jump, and a monotonic clock may stop during system suspend.
WALL_RECHECK = 300.0
#: How long after an interactive call the person counts as active.
PERSON_RECENT = 600.0
#: Classes from this rank on (background, idle) are always paced; the normal class
#: only while a person is active or when it is ahead of its fair share, so work a
#: person started is not slowed down while nobody waits for it.
PACED_RANK = RANK["background"]
#: Kinds of block that hold the queue (nobody behind may overtake).
SHARED = ("shared", "window")

Check = tuple["str | None", "str | None", "float | None"]


class AdmissionRules:
    """Limit checks over the scheduler's state (set by ``Scheduler.__init__``)."""

    budget: Budget
    prices: PriceTable
    ledger: Ledger
    provider: ProviderLimits
    pacer: Pacer
    tz: tzinfo | None
    interactive_reserve: float
    interactive_room: float
    fair: FairShare
    _pause_until: float
    _interactive_at: float
    _person_need: dict[str, int]

    def _competing(self, rank: int) -> set[str]:
        raise NotImplementedError

    def _expire(self, now: float) -> None:
        """Let old entries leave the window."""
        self.ledger.expire(now)

    def _limit(self, key: str, rank: int) -> int | None:
        """The configured limit for class ``rank`` (less ``interactive_reserve`` below it)."""
        limit = getattr(self.budget, key)
        if limit is None or rank == 0 or not self.interactive_reserve:
            return limit
        return max(1, int(limit * (1.0 - self.interactive_reserve)))

    def _person_active(self, now: float) -> bool:
        return now - self._interactive_at < PERSON_RECENT

    def _person_room(self, dim: str, limit: int, rank: int, now: float) -> int:
        """Room kept free for the person's next call, out of ``limit``, for class ``rank``."""
        if rank == 0 or not self._person_active(now):
            return 0
        return min(2 * self._person_need.get(dim, 0), int(limit * self.interactive_room))

    def _or_person_leaves(self, at: float | None, now: float) -> float | None:
        """A call that fits only without the person's room can go when the person leaves."""
        if at is None and self._person_active(now):
            return self._interactive_at + PERSON_RECENT
        return at

    def _pace_limit(self, dim: str) -> int | None:
        """The pacer's per-minute rate: the tighter of our (non-interactive) and the provider's."""
        limits = [x for x in (self._limit(KEY[dim], 1), self.provider.limit(dim)) if x is not None]
        return min(limits) if limits else None

    def _too_large(self, t: Ticket) -> str | None:
        """Why ``t`` can never be admitted under the current limits, or None."""
        need = t.need
        for dim, key, label in WINDOW_LIMITS:
            for limit, what in ((self._limit(key, t.rank), key),
                                (self.provider.limit(dim), f"the provider's {label} limit")):
                if limit is not None and need[dim] > limit:
                    return (f"the call needs {need[dim]} {label.split(' per')[0]} but {what} is "
                            f"{limit} ({t.priority} class): it can never be admitted; shorten "
                            "the input or lower max_tokens, or raise the limit")
        if t.agent_tokens_per_minute is not None and t.tokens > t.agent_tokens_per_minute:
            return (f"the call needs {t.tokens} tokens but agent {t.agent!r} may use "
                    f"{t.agent_tokens_per_minute} tokens per minute: it can never be admitted")
        # Spend caps never fail a call: the person can raise the cap, so it waits (_check).
        return None

    def _check(self, t: Ticket, now: float, wall: float, day: str,
               month: str) -> Check:
        """``(reason, kind, earliest retry time)`` of the first limit ``t`` does not fit now."""
        if t.agent_tokens_per_minute is not None:
            at = self.ledger.fit_time(now, TOKENS, t.tokens, t.agent_tokens_per_minute,
                                      agent=t.agent)
            if at is None or at > now:
                return "quota: agent tokens per minute", "own", at
        if now < self._pause_until:
            return "provider back-off", "global", self._pause_until
        cost = self.prices.worst_case_cost(t.model, t.est_input_tokens, t.max_tokens)
        for scope, key, cap in (("day", day, self.budget.usd_per_day),
                                ("month", month, self.budget.usd_per_month)):
            if cap is not None and self.ledger.spent(scope, key) + cost > cap + 1e-12:
                turn = next_period_start(wall, scope, self.tz) - wall
                if cost <= cap or cap == 0:
                    return (f"spend cap: usd_per_{scope} reached", "global",
                            now + min(turn, WALL_RECHECK))
                # Dearer than the whole cap: only this call waits for the person; cheaper
                # calls behind it may still fit, so it blocks nobody.
                return (f"spend cap: a call may cost up to ${cost:.4f}, more than "
                        f"usd_per_{scope} (${cap:g}); raise the cap", "own", None)
        cap = self.budget.max_concurrent
        if cap is not None and self.ledger.in_flight() >= cap:
            return "budget: max concurrent calls", "shared", None
        need = t.need
        for dim, key, label in WINDOW_LIMITS:
            used = self.ledger.used(dim)
            if (limit := self._limit(key, t.rank)) is not None:
                limit -= self._person_room(dim, limit, t.rank, now)
                if used + need[dim] > limit:
                    at = self.ledger.fit_time(now, dim, need[dim], limit)
                    return f"budget: {label}", "window", self._or_person_leaves(at, now)
            if (plimit := self.provider.limit(dim)) is not None:
                plimit -= self._person_room(dim, plimit, t.rank, now)
                extra, until = self.provider.external(dim, now)
                if used + extra + need[dim] > plimit:
                    at = self.ledger.fit_time(now, dim, need[dim], plimit, extra=extra,
                                              extra_until=until)
                    return f"provider limit: {label}", "window", self._or_person_leaves(at, now)
        if t.rank >= PACED_RANK or (t.rank > 0 and (self._over_share(t)
                                                     or self._person_active(now))):
            for dim, _, label in WINDOW_LIMITS:
                limit = self._pace_limit(dim)
                if limit is None:
                    continue
                at = self.pacer.ready_at(dim, now, limit, need[dim])
                if at > now:
                    why = ("fair share: other agents' turn" if self._over_share(t)
                           else f"budget: {label} (paced)")
                    return why, "shared", at
        return None, None, None

    def _over_share(self, t: Ticket) -> bool:
        """Under the fair policy: is ``t.agent`` ahead of a competing agent (by more than
        FAIR_SLACK_CALLS of its calls)?  Then a normal-class call is paced too (see
        ``_check``), leaving room for the agent behind, which is busy with a call right
        now and will be back for more."""
        if self.budget.policy != "fair":
            return False
        others = self._competing(t.rank) - {t.agent}
        if not others:
            return False
        behind = min(self.fair.settled(a) for a in others)
        return self.fair.settled(t.agent) > behind + FAIR_SLACK_CALLS * t.tokens / t.weight
