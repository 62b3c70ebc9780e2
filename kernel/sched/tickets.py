"""What an agent asks the scheduler for (a Ticket) and what it gets (a Reservation)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Priority = Literal["interactive", "normal", "background", "idle"]
#: Strict priority classes, highest first.
PRIORITIES: tuple[str, ...] = ("interactive", "normal", "background", "idle")
RANK: dict[str, int] = {p: i for i, p in enumerate(PRIORITIES)}


class RequestTooLarge(ValueError):
    """The call can never be admitted: it is larger than a whole window limit."""


@dataclass(frozen=True)
class Ticket:
    """One model call an agent wants to make.

    ``est_input_tokens`` is the input as counted toward input-tokens-per-minute
    (count it with ``count_tokens`` or a local estimate; a low estimate can make
    a window overrun, so round up).  ``deadline`` is an absolute time on the
    scheduler's clock (``clock.now()`` base), used by the ``deadline`` policy.
    ``agent_tokens_per_minute`` is the agent's quota (input + output tokens in
    a rolling window, over all instances of the agent).
    """

    pid: int
    agent: str
    priority: Priority = "normal"
    weight: float = 1.0
    deadline: float | None = None
    model: str = ""
    est_input_tokens: int = 0
    max_tokens: int = 1024
    agent_tokens_per_minute: int | None = None

    def __post_init__(self) -> None:
        if self.priority not in RANK:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, "
                             f"not {self.priority!r}")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"weight must be a positive number, not {self.weight!r}")
        if self.est_input_tokens < 0:
            raise ValueError("est_input_tokens must be >= 0")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")
        if self.agent_tokens_per_minute is not None and self.agent_tokens_per_minute < 1:
            raise ValueError("agent_tokens_per_minute must be >= 1 or None")

    @property
    def rank(self) -> int:
        return RANK[self.priority]

    @property
    def need(self) -> dict[str, int]:
        """What one admission reserves in each rolling-window dimension."""
        return {"requests": 1, "input_tokens": self.est_input_tokens,
                "output_tokens": self.max_tokens}

    @property
    def tokens(self) -> int:
        """Tokens reserved: estimated input + ``max_tokens`` output."""
        return self.est_input_tokens + self.max_tokens


@dataclass(frozen=True)
class Reservation:
    """An admitted call.  Hand it back to ``settle`` or ``abandon`` exactly once."""

    id: int
    pid: int
    agent: str
    model: str
    priority: str
    input_tokens: int     # reserved counted input
    output_tokens: int    # reserved output (max_tokens)
    cost_usd: float       # reserved worst-case cost
    admitted_at: float    # clock.now() at admission
    waited: float         # seconds spent waiting for admission
