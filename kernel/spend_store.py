"""Every settled model call, on disk: spend caps and `budget show` survive restarts.

The scheduler's ledger lives in memory; at start-up the kernel replays this month's calls
into it, so a restart never resets what was spent today or this month.
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from kernel.db import Database
from kernel.sched import Usage



class SpendStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, pid: int, agent: str, model: str, requests: int, usage: Usage,
               usd: float, ts: float | None = None) -> None:
        self._db.execute(
            "INSERT INTO model_calls (ts, pid, agent, model, requests, input_tokens, output_tokens,"
            " cache_creation_input_tokens, cache_read_input_tokens, usd)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (ts if ts is not None else time.time(), pid, agent, model, requests,
             usage.input_tokens, usage.output_tokens, usage.cache_creation_input_tokens,
             usage.cache_read_input_tokens, usd))

    def this_month(self, now: float | None = None) -> list[dict[str, Any]]:
        """The calls of the current calendar month (local time), oldest first."""
        d = datetime.fromtimestamp(now if now is not None else time.time())
        start = d.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
        return self._db.query("SELECT * FROM model_calls WHERE ts >= ? ORDER BY id", (start,))
