"""The process table: agent instances, their pids and states.

Invariant: `ProcessTable.transition` is the only code that changes a process's state.
It checks the move against `TRANSITIONS`; an illegal move is a kernel bug and raises
`IllegalTransition`. Kill and suspend are *requests* (flags) honoured by the syscall
dispatcher at the process's next syscall boundary, as xv6 honours `p->killed`.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kernel.db import Database

log = logging.getLogger(__name__)


class State(str, enum.Enum):
    CREATED = "created"
    READY = "ready"
    RUNNING = "running"
    WAITING = "waiting"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class WaitReason(str, enum.Enum):
    BUDGET = "budget"
    APPROVAL = "approval"
    LOCK = "lock"
    MESSAGE = "message"
    TRIGGER = "trigger"
    SLEEP = "sleep"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.CREATED: frozenset({State.READY, State.SUSPENDED, State.TERMINATED}),
    State.READY: frozenset({State.RUNNING, State.SUSPENDED, State.TERMINATED}),
    State.RUNNING: frozenset({State.READY, State.WAITING, State.SUSPENDED, State.TERMINATED}),
    State.WAITING: frozenset({State.RUNNING, State.READY, State.SUSPENDED, State.TERMINATED}),
    State.SUSPENDED: frozenset({State.READY, State.TERMINATED}),
    State.TERMINATED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A state change the state machine does not allow: always a kernel bug."""


class NoSuchProcess(LookupError):
    pass


@dataclass(eq=False)
class Process:
    pid: int
    agent: str
    parent: int | None
    input: str | None
    state: State = State.CREATED
    reason: str | None = None
    exit_status: str | None = None
    steps: int = 0
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    # Requests honoured at the next syscall boundary.
    kill_requested: bool = False
    suspend_requested: bool = False
    resumed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    mailbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue, repr=False)
    task: asyncio.Task[Any] | None = field(default=None, repr=False)
    # The conversation so far; checkpointed to disk when the process is parked.
    conversation: list[dict[str, Any]] = field(default_factory=list, repr=False)
    # Results of the current turn's tool calls so far, and the call being made now.
    turn_results: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    in_flight: str | None = None

    @property
    def alive(self) -> bool:
        return self.state is not State.TERMINATED

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "agent": self.agent, "parent": self.parent,
                "state": self.state.value, "reason": self.reason,
                "exit_status": self.exit_status, "steps": self.steps,
                "created": self.created, "updated": self.updated,
                "kill_requested": self.kill_requested,
                "suspend_requested": self.suspend_requested}


StateListener = Callable[[Process, State], None]


class ProcessTable:
    def __init__(self, db: Database, on_change: StateListener | None = None) -> None:
        self._db = db
        self._procs: dict[int, Process] = {}
        self._on_change = on_change
        row = db.one("SELECT COALESCE(MAX(pid), 0) AS top FROM procs")
        self._next_pid = int(row["top"]) + 1 if row else 1

    def create(self, agent: str, input: str | None, parent: int | None = None) -> Process:
        proc = Process(pid=self._next_pid, agent=agent, parent=parent, input=input)
        self._next_pid += 1
        self._procs[proc.pid] = proc
        self._db.execute(
            "INSERT INTO procs (pid, agent, parent, state, reason, exit_status, input, steps,"
            " created, updated) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (proc.pid, agent, parent, proc.state.value, None, None, input, 0,
             proc.created, proc.updated))
        return proc

    def get(self, pid: int) -> Process:
        """The one helper that checks a pid before use (cf. xv6 `argfd`)."""
        proc = self._procs.get(pid)
        if proc is None:
            raise NoSuchProcess(f"no process with pid {pid}")
        return proc

    def live(self) -> list[Process]:
        return [p for p in self._procs.values() if p.alive]

    def transition(self, proc: Process, new: State, reason: str | None = None,
                   exit_status: str | None = None) -> None:
        old = proc.state
        if new not in TRANSITIONS[old] and not (new is old and new is State.WAITING):
            raise IllegalTransition(f"pid {proc.pid}: {old.value} -> {new.value}")
        if new is State.WAITING and reason is None:
            raise IllegalTransition(f"pid {proc.pid}: waiting needs a reason")
        if new is State.TERMINATED and exit_status is None:
            raise IllegalTransition(f"pid {proc.pid}: terminated needs an exit status")
        proc.state = new
        proc.reason = reason
        if exit_status is not None:
            proc.exit_status = exit_status
        proc.updated = time.time()
        self._db.execute(
            "UPDATE procs SET state=?, reason=?, exit_status=?, steps=?, updated=? WHERE pid=?",
            (new.value, reason, proc.exit_status, proc.steps, proc.updated, proc.pid))
        log.debug("pid %d: %s -> %s (%s)", proc.pid, old.value, new.value, reason or "")
        if self._on_change is not None:
            self._on_change(proc, old)

    def record_step(self, proc: Process) -> None:
        proc.steps += 1
        self._db.execute("UPDATE procs SET steps=? WHERE pid=?", (proc.steps, proc.pid))

    def listing(self, include_finished: bool = True, limit: int = 200) -> list[dict[str, Any]]:
        """Live processes from memory, finished ones from the store (they outlive restarts)."""
        rows = {p.pid: p.as_dict() for p in self._procs.values()}
        if include_finished:
            for r in self._db.query("SELECT pid, agent, parent, state, reason, exit_status,"
                                    " steps, created, updated FROM procs ORDER BY pid DESC"
                                    " LIMIT ?", (limit,)):
                rows.setdefault(r["pid"], r)
        return [rows[pid] for pid in sorted(rows)]

    def leftovers(self) -> list[dict[str, Any]]:
        """Rows a previous kernel left unfinished (it stopped or crashed under them)."""
        return self._db.query("SELECT * FROM procs WHERE state != 'terminated' ORDER BY pid")

    def adopt(self, row: dict[str, Any]) -> Process:
        """Bring a leftover row back as a process in state `created`, same pid."""
        proc = Process(pid=row["pid"], agent=row["agent"], parent=row["parent"],
                       input=row["input"], steps=row["steps"], created=row["created"])
        self._procs[proc.pid] = proc
        self._db.execute("UPDATE procs SET state='created', reason=NULL, updated=? WHERE pid=?",
                         (time.time(), proc.pid))
        return proc

    def mark_lost(self, pid: int, status: str) -> None:
        """A leftover row that cannot come back ends here, with its reason."""
        self._db.execute("UPDATE procs SET state='terminated', exit_status=?, updated=?"
                         " WHERE pid=? AND state != 'terminated'", (status, time.time(), pid))
