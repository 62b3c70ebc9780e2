"""Order among waiters of one priority class: fair share, deadline, cheapest.

Classes are strict (interactive > normal > background > idle); this module
only orders waiters *within* a class, by ``budget.policy``:

* ``fair`` -- weighted fair share of tokens, start-time fair queueing: each
  agent (all its processes together: a share is the agent's, as its quota is)
  has a virtual time that grows by ``tokens / weight`` per admitted call
  (corrected to the real tokens at settlement); the waiter whose agent has the
  lowest virtual time goes first.  Agents that keep competing therefore get
  tokens in proportion to their weights.
* ``deadline`` -- earliest deadline first; calls without a deadline last.
* ``cheapest`` -- smallest worst-case cost first; a waiter older than
  ``CHEAPEST_AGING`` seconds goes first (oldest first), so a costly call is
  delayed, never starved.

Ties always fall back to arrival order, so ordering is deterministic.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kernel.sched.tickets import RANK, Ticket

CHEAPEST_AGING = 120.0
#: An agent that stopped competing for a while (it ran tools, or was idle) keeps
#: at most this many calls' worth of credit below the agents that kept
#: competing: a short pause costs it nothing, a long idle spell earns no burst.
FAIR_LAG_CALLS = 2.0
#: An agent whose call ended this recently still counts as competing: an agent
#: usually runs a tool or two and comes back for its next call.
FAIR_GRACE = 5.0
#: Under the fair policy an agent more than this many of its calls ahead of a
#: competing agent is paced (see ``AdmissionRules._over_share``).
FAIR_SLACK_CALLS = 0.25


class FairShare:
    """Virtual times per agent and a monotone floor per class (as CFS's ``min_vruntime``).

    ``vtime`` counts calls in flight at their reservation (it orders the
    waiters); :meth:`settled` leaves them out -- the service really received,
    which is what placement and the pacing of agents ahead compare, so that a
    large ``max_tokens`` reservation does not make a newcomer look ahead once
    the call settles low.
    """

    def __init__(self) -> None:
        self.vtime: dict[str, float] = {}
        self.inflight: dict[str, float] = {}
        self.vmin: dict[int, float] = dict.fromkeys(RANK.values(), 0.0)

    def settled(self, agent: str) -> float:
        return self.vtime.get(agent, 0.0) - self.inflight.get(agent, 0.0)

    def place(self, t: Ticket, competing: Iterable[str]) -> None:
        """Called when ``t`` arrives; ``competing`` = agents of the class waiting or in flight.

        An agent that is itself still competing is left alone; a newcomer starts
        at the lowest virtual time of the others; a returning agent keeps at most
        ``FAIR_LAG_CALLS`` calls of credit below it.
        """
        others = set(competing)
        if t.agent in others:
            return
        if others:
            ref = min(self.settled(p) for p in others)
            self.vmin[t.rank] = max(self.vmin[t.rank], ref)
        ref = self.vmin[t.rank]
        lag = FAIR_LAG_CALLS * t.tokens / t.weight
        self.vtime[t.agent] = max(self.vtime.get(t.agent, ref), ref - lag)

    def admitted(self, agent: str, reserved: int, weight: float) -> None:
        self.vtime[agent] = self.vtime.get(agent, 0.0) + reserved / weight
        self.inflight[agent] = self.inflight.get(agent, 0.0) + reserved / weight

    def closed(self, agent: str, reserved: int, used: int, weight: float) -> None:
        """The call ended: its reservation is replaced by the tokens it really used."""
        self.vtime[agent] = self.vtime.get(agent, 0.0) + (used - reserved) / weight
        self.inflight[agent] = max(0.0, self.inflight.get(agent, 0.0) - reserved / weight)

    def adjust(self, agent: str, delta: int, weight: float) -> None:
        """A call in flight turned out ``delta`` tokens larger (or smaller) than reserved."""
        self.vtime[agent] = self.vtime.get(agent, 0.0) + delta / weight
        self.inflight[agent] = max(0.0, self.inflight.get(agent, 0.0) + delta / weight)



def order_key(t: Ticket, seq: int, waited: float, policy: str, cost: float,
              fair: FairShare) -> tuple[Any, ...]:
    """Sort key of a waiter: class first, then the policy, then arrival."""
    if policy == "deadline":
        return (t.rank, t.deadline is None, t.deadline or 0.0, seq)
    if policy == "cheapest":
        if waited >= CHEAPEST_AGING:
            return (t.rank, 0, -waited, seq)
        return (t.rank, 1, cost, seq)
    return (t.rank, fair.vtime.get(t.agent, 0.0), seq)
