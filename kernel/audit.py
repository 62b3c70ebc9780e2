"""The audit log: every syscall, its decision and its result, secrets redacted."""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from kernel.db import Database

# Names of fields that hold secrets (`access_token`, `api_key`), not ones that merely
# mention tokens (`max_tokens`).
SECRET_KEY = re.compile(r"(api[_-]?key|(^|[_-])token|secret|password|passwd|authorization|cookie)$",
                        re.I)
SECRET_VALUE = re.compile(r"sk-ant-[A-Za-z0-9_\-]+")
MAX_FIELD = 2000


def redact_args(value: Any, redact_text: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {k: ("[redacted]" if SECRET_KEY.search(str(k)) else redact_args(v, redact_text))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_args(v, redact_text) for v in value]
    if isinstance(value, str):
        text = SECRET_VALUE.sub("[redacted]", redact_text(value))
        return text if len(text) <= MAX_FIELD else text[:MAX_FIELD] + f"...(+{len(text) - MAX_FIELD})"
    return value


class AuditLog:
    def __init__(self, db: Database, redact_text: Callable[[str], str] = lambda s: s) -> None:
        self._db = db
        self._redact = redact_text

    def record(self, *, agent: str, pid: int | None, call: str, args: dict[str, Any],
               decision: str, result: str, duration_ms: float) -> int:
        safe_args = json.dumps(redact_args(args, self._redact), default=str)
        safe_result = redact_args(result, self._redact)
        cur = self._db.execute(
            "INSERT INTO audit (ts, agent, pid, call, args, decision, result, duration_ms)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (time.time(), agent, pid, call, safe_args, decision, safe_result, duration_ms))
        return int(cur.lastrowid or 0)

    def query(self, agent: str | None = None, pid: int | None = None,
              limit: int = 50) -> list[dict[str, Any]]:
        where, params = [], []
        if agent:
            where.append("agent=?")
            params.append(agent)
        if pid is not None:
            where.append("pid=?")
            params.append(pid)
        sql = "SELECT * FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        rows = self._db.query(sql, (*params, limit))
        for r in rows:
            r["args"] = json.loads(r["args"])
        return list(reversed(rows))
