"""Per-agent tool-call quota (`[quotas] tool_calls_per_minute` in a spec), over all of
the agent's instances, in a rolling 60 s window."""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW = 60.0


class ToolCallQuota:
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._calls: dict[str, deque[float]] = {}

    def wait_time(self, agent: str, limit: int | None) -> float:
        """Seconds until `agent` may make another tool call (0: now)."""
        if limit is None:
            return 0.0
        calls = self._calls.setdefault(agent, deque())
        now = self._now()
        while calls and calls[0] <= now - WINDOW:
            calls.popleft()
        if len(calls) < limit:
            return 0.0
        return calls[len(calls) - limit] + WINDOW - now

    def record(self, agent: str) -> None:
        self._calls.setdefault(agent, deque()).append(self._now())
