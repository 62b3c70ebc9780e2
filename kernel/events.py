"""Publish/subscribe of kernel events, with a durable per-process history.

Every event is a JSON-able dict with a "type". Events about a process carry "pid" and a
per-process "seq"; those whose type is in `DURABLE` are also stored, so a client that
connects late (or `agents logs`) sees the whole story. Text deltas are live only.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import contextmanager
from typing import Any, Iterator

from kernel.db import Database

log = logging.getLogger(__name__)

DURABLE = frozenset({"proc.state", "proc.input", "proc.text", "proc.tool", "proc.tool_result",
                     "proc.exit", "proc.error", "approval.requested", "approval.resolved",
                     "proc.message"})
QUEUE_LIMIT = 10_000


class EventBus:
    def __init__(self, db: Database, redact: Callable[[str], str] = lambda s: s) -> None:
        self._db = db
        self._redact = redact  # stored events never hold a secret
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._seq: dict[int, int] = {}

    def publish(self, event: dict[str, Any]) -> dict[str, Any]:
        event = {"ts": time.time(), **event}
        pid = event.get("pid")
        if isinstance(pid, int):
            seq = self._seq.get(pid)
            if seq is None:
                row = self._db.one("SELECT COALESCE(MAX(seq), 0) AS s FROM proc_events WHERE pid=?",
                                   (pid,))
                seq = int(row["s"]) if row else 0
            seq += 1
            self._seq[pid] = seq
            event["seq"] = seq
            if event["type"] in DURABLE:
                self._db.execute("INSERT INTO proc_events (pid, seq, ts, type, data) VALUES (?,?,?,?,?)",
                                 (pid, seq, event["ts"], event["type"],
                                  self._redact(json.dumps(event, default=str))))
        for queue in list(self._subscribers):
            if queue.qsize() >= QUEUE_LIMIT:
                log.warning("dropping a slow event subscriber")
                self._subscribers.discard(queue)
                continue
            queue.put_nowait(event)
        return event

    def history(self, pid: int) -> list[dict[str, Any]]:
        rows = self._db.query("SELECT data FROM proc_events WHERE pid=? ORDER BY seq", (pid,))
        return [json.loads(r["data"]) for r in rows]

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    async def follow(self, pid: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """All events; with `pid`, that process's history then its live events until it exits."""
        with self.subscribe() as queue:
            last = 0
            if pid is not None:
                for event in self.history(pid):
                    last = event.get("seq", last)
                    yield event
                    if event["type"] == "proc.exit":
                        return
            while True:
                event = await queue.get()
                if pid is not None:
                    if event.get("pid") != pid or event.get("seq", 0) <= last:
                        continue
                yield event
                if pid is not None and event["type"] == "proc.exit":
                    return
