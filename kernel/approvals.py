"""Approval requests: an `ask` decision waits here for a person's answer.

Invariant: an unanswered request times out to *deny*; nothing is done on silence.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from kernel.db import Database
from kernel.events import EventBus

log = logging.getLogger(__name__)


class Approvals:
    def __init__(self, db: Database, bus: EventBus, timeout: float,
                 notify: Callable[[str, str], None] | None = None) -> None:
        self._db = db
        self._bus = bus
        self.timeout = timeout
        self._notify = notify
        self._pending: dict[int, asyncio.Future[bool]] = {}
        # Requests a previous kernel left open can never be answered now.
        db.execute("UPDATE approvals SET status='expired' WHERE status='pending'")

    async def request(self, pid: int, agent: str, capability: str, detail: str) -> bool:
        now = time.time()
        cur = self._db.execute(
            "INSERT INTO approvals (pid, agent, capability, detail, status, created, expires)"
            " VALUES (?,?,?,?,?,?,?)",
            (pid, agent, capability, detail, "pending", now, now + self.timeout))
        approval_id = int(cur.lastrowid or 0)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[approval_id] = future
        self._bus.publish({"type": "approval.requested", "id": approval_id, "pid": pid,
                           "agent": agent, "capability": capability, "detail": detail,
                           "expires": now + self.timeout})
        if self._notify is not None:
            try:
                self._notify(f"{agent} asks for {capability}",
                             f"{detail}\nApprove with: deskpilot approvals approve {approval_id}")
            except Exception:
                log.exception("desktop notification failed")
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except asyncio.TimeoutError:
            self._finish(approval_id, "expired", pid)
            return False
        except asyncio.CancelledError:
            self._finish(approval_id, "cancelled", pid)
            raise
        finally:
            self._pending.pop(approval_id, None)

    def answer(self, approval_id: int, approve: bool) -> dict[str, Any]:
        row = self._db.one("SELECT * FROM approvals WHERE id=?", (approval_id,))
        if row is None:
            raise KeyError(f"no approval request {approval_id}")
        future = self._pending.get(approval_id)
        if row["status"] != "pending" or future is None or future.done():
            raise ValueError(f"approval request {approval_id} is already {row['status']}")
        status = "approved" if approve else "denied"
        self._finish(approval_id, status, row["pid"])
        future.set_result(approve)
        return {**row, "status": status}

    def _finish(self, approval_id: int, status: str, pid: int) -> None:
        self._db.execute("UPDATE approvals SET status=?, answered=? WHERE id=? AND status='pending'",
                         (status, time.time(), approval_id))
        self._bus.publish({"type": "approval.resolved", "id": approval_id, "pid": pid,
                           "status": status})

    def listing(self, status: str | None = None) -> list[dict[str, Any]]:
        if status:
            return self._db.query("SELECT * FROM approvals WHERE status=? ORDER BY id", (status,))
        return self._db.query("SELECT * FROM approvals ORDER BY id DESC LIMIT 200")
