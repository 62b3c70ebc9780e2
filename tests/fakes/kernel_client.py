"""An in-memory stand-in for `kernel.client.KernelClient`.

Same method names and return shapes as the real client; every call is recorded with
the thread it ran on, so tests can check that the UI never calls the kernel from the
GUI thread (`forbid_thread`). Events are fed by the test (`emit`); `events()` is a
blocking iterator like the real SSE stream, and `go_away()` / `come_back()` simulate
the kernel disappearing and returning.
"""
from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kernel.client import KernelError, KernelUnavailable
from kernel.sched import Budget, BudgetError, ModelPrice, Scheduler, Usage, apply_setting

_END = object()


@dataclass
class Call:
    name: str
    args: tuple[Any, ...]
    thread: int = field(default_factory=threading.get_ident)


class _Subscriber:
    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.queue: queue.Queue[Any] = queue.Queue()


class FakeKernelClient:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.calls: list[Call] = []
        self.violations: list[Call] = []
        self._forbidden: int | None = None
        self.available = True
        self.closed = False
        self.version = "0.1.0-fake"
        self.agent_list: list[dict[str, Any]] = [
            {"name": "assistant", "description": "Answers requests", "priority": "interactive"},
            {"name": "downloads-organizer", "description": "Sorts ~/Downloads",
             "priority": "background"},
        ]
        self.procs: dict[int, dict[str, Any]] = {}
        self.grant_table: dict[tuple[str, str], str] = {}
        self.approval_table: dict[int, dict[str, Any]] = {}
        # agent -> text chunks it "streams" (live "proc.delta" events, then one "proc.text")
        self.replies: dict[str, list[str]] = {}
        self._next_pid = 100
        self._next_approval = 1
        self._subscribers: list[_Subscriber] = []
        self._history: dict[int, list[dict[str, Any]]] = {}
        self.event_connects = 0
        self.scheduler = Scheduler(Budget(input_tokens_per_minute=40_000, usd_per_day=5.0))

    # -- test controls ------------------------------------------------------------------
    def forbid_thread(self, ident: int | None) -> None:
        """Calls made on thread `ident` are recorded as violations and fail."""
        self._forbidden = ident

    def called(self, name: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return [c.args for c in self.calls if c.name == name]

    def add_process(self, agent: str, state: str = "running", reason: str = "") -> int:
        with self._lock:
            pid = self._next_pid
            self._next_pid += 1
            self.procs[pid] = {"pid": pid, "agent": agent, "state": state, "reason": reason}
        return pid

    def request_approval(self, pid: int, agent: str, capability: str,
                         detail: str = "", announce: bool = True) -> int:
        """The kernel side of an `ask` rule: record a pending request and announce it
        (``announce=False``: as if the event was lost while the stream reconnected)."""
        with self._lock:
            aid = self._next_approval
            self._next_approval += 1
            record = {"id": aid, "pid": pid, "agent": agent, "capability": capability,
                      "detail": detail, "status": "pending"}
            self.approval_table[aid] = record
        if announce:
            self.emit({"type": "approval.requested", **{k: v for k, v in record.items()
                                                         if k != "status"}})
        return aid

    def emit(self, event: dict[str, Any]) -> None:
        """Deliver `event` to every open stream (and to the pid's history)."""
        pid = event.get("pid")
        with self._lock:
            if pid is not None:
                self._history.setdefault(pid, []).append(event)
            subs = list(self._subscribers)
        for sub in subs:
            if sub.pid is None or sub.pid == pid:
                sub.queue.put(event)
            if sub.pid is not None and sub.pid == pid and event.get("type") == "proc.exit":
                sub.queue.put(_END)  # like the kernel: a process's stream ends at its exit

    def go_away(self) -> None:
        """The kernel stops answering; open streams fail with KernelUnavailable."""
        with self._lock:
            self.available = False
            subs = list(self._subscribers)
        for sub in subs:
            sub.queue.put(KernelUnavailable("fake kernel went away"))

    def come_back(self) -> None:
        with self._lock:
            self.available = True

    def streams(self) -> int:
        with self._lock:
            return len(self._subscribers)

    # -- plumbing -----------------------------------------------------------------------
    def _enter(self, name: str, *args: Any) -> None:
        call = Call(name, args)
        with self._lock:
            self.calls.append(call)
            if self._forbidden is not None and call.thread == self._forbidden:
                self.violations.append(call)
                raise AssertionError(f"client.{name} called on the GUI thread")
            if not self.available or self.closed:
                raise KernelUnavailable("no fake kernel")

    def _proc(self, pid: int) -> dict[str, Any]:
        if pid not in self.procs:
            raise KernelError(404, f"no process {pid}")
        return self.procs[pid]

    def _set_state(self, pid: int, state: str, reason: str = "") -> dict[str, Any]:
        with self._lock:
            proc = self._proc(pid)
            if proc["state"] == "terminated":
                raise KernelError(409, f"process {pid} has terminated")
            proc.update(state=state, reason=reason)
            result = dict(proc)
        self.emit({"type": "proc.state", **result})
        if state == "terminated":
            self.emit({"type": "proc.exit", "pid": pid, "status": reason or "done"})
        return result

    def close(self) -> None:
        with self._lock:
            self.closed = True
            subs = list(self._subscribers)
        for sub in subs:
            sub.queue.put(_END)

    def __enter__(self) -> "FakeKernelClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def is_running(self) -> bool:
        try:
            self.status()
            return True
        except KernelUnavailable:
            return False

    # -- kernel -------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        self._enter("status")
        return {"running": True, "pid": 4242, "socket": "/fake/kernel.sock",
                "version": self.version}

    def shutdown(self) -> None:
        self._enter("shutdown")
        self.go_away()

    # -- agents and processes -----------------------------------------------------------
    def agents(self) -> list[dict[str, Any]]:
        self._enter("agents")
        return [dict(a) for a in self.agent_list]

    def start_agent(self, name: str, input: str | None = None) -> dict[str, Any]:
        self._enter("start_agent", name, input)
        if name not in {a["name"] for a in self.agent_list}:
            raise KernelError(404, f"no agent named {name}")
        pid = self.add_process(name, "running")
        self.emit({"type": "proc.state", **self.procs[pid]})
        if name in self.replies:
            chunks = self.replies[name]
            for chunk in chunks:
                self.emit({"type": "proc.delta", "pid": pid, "text": chunk})
            self.emit({"type": "proc.text", "pid": pid, "text": "".join(chunks)})
            self._set_state(pid, "terminated", "done")
        return {"pid": pid, "agent": name, "state": self.procs[pid]["state"]}

    def processes(self) -> list[dict[str, Any]]:
        self._enter("processes")
        with self._lock:
            return [dict(p) for p in self.procs.values()]

    def process(self, pid: int) -> dict[str, Any]:
        self._enter("process", pid)
        return dict(self._proc(pid))

    def suspend(self, pid: int) -> dict[str, Any]:
        self._enter("suspend", pid)
        return self._set_state(pid, "suspended", "by user")

    def resume(self, pid: int) -> dict[str, Any]:
        self._enter("resume", pid)
        return self._set_state(pid, "ready", "")

    def kill(self, pid: int) -> dict[str, Any]:
        self._enter("kill", pid)
        return self._set_state(pid, "terminated", "killed")

    def logs(self, pid: int) -> list[dict[str, Any]]:
        self._enter("logs", pid)
        with self._lock:
            return [dict(e) for e in self._history.get(pid, [])]

    def send(self, agent: str, text: str) -> dict[str, Any]:
        self._enter("send", agent, text)
        return {"agent": agent, "delivered": True}

    # -- grants and approvals -----------------------------------------------------------
    def grants(self, agent: str | None = None) -> list[dict[str, Any]]:
        self._enter("grants", agent)
        with self._lock:
            return [{"agent": a, "capability": c, "mode": m}
                    for (a, c), m in sorted(self.grant_table.items())
                    if agent is None or a == agent]

    def set_grant(self, agent: str, capability: str, mode: str) -> dict[str, Any]:
        self._enter("set_grant", agent, capability, mode)
        if mode not in ("allow", "ask", "deny"):
            raise KernelError(422, f"unknown mode {mode!r}")
        with self._lock:
            self.grant_table[(agent, capability)] = mode
        row = {"agent": agent, "capability": capability, "mode": mode}
        self.emit({"type": "grants.changed", **row})
        return row

    # -- budget: the real scheduler's report and validation, without a kernel ----------
    def budget(self) -> dict[str, Any]:
        self._enter("budget")
        with self._lock:
            return json.loads(json.dumps(self.scheduler.report()))

    def set_budget(self, key: str, value: str) -> dict[str, Any]:
        self._enter("set_budget", key, value)
        with self._lock:
            try:
                budget = apply_setting(self.scheduler.budget, key, value)
            except BudgetError as exc:
                raise KernelError(400, str(exc)) from None
            self.scheduler.update_budget(budget)
        self.emit({"type": "budget.changed", "budget": budget.model_dump()})
        return budget.model_dump()

    def set_price(self, model: str, input: float, output: float,
                  cache_write: float | None = None,
                  cache_read: float | None = None) -> dict[str, Any]:
        self._enter("set_price", model, input, output)
        try:
            price = ModelPrice.of(input, output, cache_write, cache_read)
        except ValueError as exc:
            raise KernelError(400, str(exc)) from None
        with self._lock:
            self.scheduler.prices.put(model, price)
        self.emit({"type": "budget.changed", "price": {model: vars(price)}})
        return {model: vars(price).copy()}

    def record_spend(self, agent: str, usd: float, usage: Usage) -> None:
        """As if `agent` had made a model call today that cost `usd`."""
        with self._lock:
            self.scheduler.restore_spend(agent, time.time(), requests=1, usage=usage, usd=usd)

    def revoke_grant(self, agent: str, capability: str) -> dict[str, Any]:
        self._enter("revoke_grant", agent, capability)
        with self._lock:
            if self.grant_table.pop((agent, capability), None) is None:
                raise KernelError(404, f"{agent} has no rule for {capability}")
        self.emit({"type": "grants.changed", "agent": agent, "capability": capability,
                   "mode": None})
        return {"agent": agent, "capability": capability, "revoked": True}

    def approvals(self, status: str | None = "pending") -> list[dict[str, Any]]:
        self._enter("approvals", status)
        with self._lock:
            return [dict(a) for a in self.approval_table.values()
                    if status is None or a["status"] == status]

    def answer_approval(self, approval_id: int, approve: bool) -> dict[str, Any]:
        self._enter("answer_approval", approval_id, approve)
        with self._lock:
            record = self.approval_table.get(approval_id)
            if record is None:
                raise KernelError(404, f"no approval {approval_id}")
            if record["status"] != "pending":
                raise KernelError(409, f"approval {approval_id} is already {record['status']}")
            record["status"] = "approved" if approve else "denied"
            result = dict(record)
        self.emit({"type": "approval.resolved", "id": approval_id, "status": result["status"]})
        return result

    def audit(self, agent: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        self._enter("audit", agent, limit)
        return []

    # -- events -------------------------------------------------------------------------
    def events(self, pid: int | None = None) -> Iterator[dict[str, Any]]:
        self._enter("events", pid)
        sub = _Subscriber(pid)
        with self._lock:
            self.event_connects += 1
            if pid is not None:
                for past in self._history.get(pid, []):
                    sub.queue.put(past)
                if any(e.get("type") == "proc.exit" for e in self._history.get(pid, [])):
                    sub.queue.put(_END)
            self._subscribers.append(sub)
        return self._drain(sub)

    def _drain(self, sub: _Subscriber) -> Iterator[dict[str, Any]]:
        try:
            while True:
                item = sub.queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            with self._lock:
                if sub in self._subscribers:
                    self._subscribers.remove(sub)
