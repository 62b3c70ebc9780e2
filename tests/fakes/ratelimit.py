"""Rolling-window rate-limit emulation for the fake Messages API.

Three limits, each optional (``None`` = unlimited): requests per minute,
input tokens per minute (uncached input + cache writes; cache reads are free,
as at Anthropic) and output tokens per minute.  Usage is kept per admitted
request in a rolling 60 s window measured with the server's clock: a request
admitted at ``t`` counts while ``now < t + 60``.

A request is admitted only if, for every limit, ``used_in_window + cost <=
limit``.  Output tokens are charged with the reply's real output token count at
admission (the fake knows its reply in advance), so the window total never
exceeds a limit.  When a request is refused, ``retry_after`` is the time until
enough earlier requests leave the window for it to fit.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

WINDOW = 60.0
UNLIMITED = 1_000_000_000  # reported as the limit when a limit is off

KINDS = ("requests", "input_tokens", "output_tokens")


@dataclass(frozen=True)
class Admission:
    admitted: bool
    retry_after: float = 0.0
    exceeded: str | None = None  # "requests" | "input_tokens" | "output_tokens"
    message: str = ""


@dataclass(frozen=True)
class _Entry:
    t: float
    requests: int
    input_tokens: int
    output_tokens: int


def rfc3339(wall_time: float) -> str:
    return (
        dt.datetime.fromtimestamp(wall_time, tz=dt.timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


class RateLimiter:
    def __init__(
        self,
        clock: Callable[[], float],
        *,
        rpm: int | None = None,
        itpm: int | None = None,
        otpm: int | None = None,
        window: float = WINDOW,
    ) -> None:
        self.clock = clock
        self.rpm = rpm
        self.itpm = itpm
        self.otpm = otpm
        self.window = window
        self._entries: deque[_Entry] = deque()
        self._lock = threading.Lock()

    def limit(self, kind: str) -> int | None:
        return {"requests": self.rpm, "input_tokens": self.itpm, "output_tokens": self.otpm}[kind]

    def _prune(self, now: float) -> None:
        while self._entries and self._entries[0].t + self.window <= now:
            self._entries.popleft()

    def used(self, kind: str) -> int:
        with self._lock:
            self._prune(self.clock())
            return sum(getattr(e, kind) for e in self._entries)

    def try_admit(self, input_tokens: int, output_tokens: int) -> Admission:
        """Admit and record the request if it fits every limit; else say when it would."""
        now = self.clock()
        cost = {"requests": 1, "input_tokens": input_tokens, "output_tokens": output_tokens}
        with self._lock:
            self._prune(now)
            worst: Admission | None = None
            for kind in KINDS:
                limit = self.limit(kind)
                if limit is None:
                    continue
                used = sum(getattr(e, kind) for e in self._entries)
                if used + cost[kind] <= limit:
                    continue
                wait = self._wait_for(kind, used + cost[kind] - limit, limit, cost[kind], now)
                if worst is None or wait > worst.retry_after:
                    unit = "requests" if kind == "requests" else kind.replace("_", " ")
                    worst = Admission(
                        admitted=False,
                        retry_after=wait,
                        exceeded=kind,
                        message=(
                            f"This request would exceed the rate limit for your organization of "
                            f"{limit} {unit} per minute. For details, refer to: "
                            f"https://docs.claude.com/en/api/rate-limits."
                        ),
                    )
            if worst is not None:
                return worst
            self._entries.append(_Entry(now, 1, input_tokens, output_tokens))
            return Admission(admitted=True)

    def _wait_for(self, kind: str, deficit: int, limit: int, cost: int, now: float) -> float:
        if cost > limit:
            return self.window  # can never fit; tell the client to back off a full window
        freed = 0
        for e in self._entries:
            freed += getattr(e, kind)
            if freed >= deficit:
                return max(0.0, e.t + self.window - now)
        return self.window

    def headers(self) -> dict[str, str]:
        """Anthropic's ``anthropic-ratelimit-*`` headers for the current window."""
        now = self.clock()
        wall_now = time.time()
        out: dict[str, str] = {}
        state: dict[str, tuple[int, int, str]] = {}
        with self._lock:
            self._prune(now)
            for kind in KINDS:
                limit = self.limit(kind) or UNLIMITED
                entries = [e for e in self._entries if getattr(e, kind)]
                used = sum(getattr(e, kind) for e in entries)
                # Fully replenished once the newest charged request leaves the window.
                reset_at = entries[-1].t + self.window if entries else now
                reset = rfc3339(wall_now + (reset_at - now))
                remaining = max(0, limit - used)
                state[kind] = (limit, remaining, reset)
                name = kind.replace("_", "-")
                out[f"anthropic-ratelimit-{name}-limit"] = str(limit)
                out[f"anthropic-ratelimit-{name}-remaining"] = str(remaining)
                out[f"anthropic-ratelimit-{name}-reset"] = reset
        # tokens-*: the most restrictive of input / output currently in effect.
        tokens = min(state["input_tokens"], state["output_tokens"], key=lambda s: s[1])
        out["anthropic-ratelimit-tokens-limit"] = str(tokens[0])
        out["anthropic-ratelimit-tokens-remaining"] = str(tokens[1])
        out["anthropic-ratelimit-tokens-reset"] = tokens[2]
        return out
