"""kernel.proc: the process state machine and its persistence in the kernel DB."""
from __future__ import annotations

import itertools
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from kernel.db import Database
from kernel.proc import (
    TRANSITIONS,
    IllegalTransition,
    NoSuchProcess,
    Process,
    ProcessTable,
    State,
    WaitReason,
)

# The one move outside TRANSITIONS that `transition` deliberately allows: a waiting
# process may change what it waits for (e.g. budget -> approval) without waking up.
EXTRA_LEGAL = {(State.WAITING, State.WAITING)}


def legal(old: State, new: State) -> bool:
    return new in TRANSITIONS[old] or (old, new) in EXTRA_LEGAL


def path_to(state: State) -> list[State]:
    """A shortest legal sequence of states from CREATED to `state` (CREATED excluded)."""
    prev: dict[State, State | None] = {State.CREATED: None}
    todo = deque([State.CREATED])
    while todo:
        s = todo.popleft()
        for n in sorted(TRANSITIONS[s], key=lambda x: x.value):
            if n not in prev:
                prev[n] = s
                todo.append(n)
    assert state in prev, f"{state} unreachable from created"
    out: list[State] = []
    cur: State | None = state
    while cur is not None and cur is not State.CREATED:
        out.append(cur)
        cur = prev[cur]
    return out[::-1]


def kwargs_for(new: State) -> dict[str, Any]:
    if new is State.WAITING:
        return {"reason": WaitReason.APPROVAL.value}
    if new is State.TERMINATED:
        return {"exit_status": "ok"}
    return {}


def move(table: ProcessTable, proc: Process, to: State) -> None:
    for s in path_to(to):
        table.transition(proc, s, **kwargs_for(s))
    assert proc.state is to


@pytest.fixture
def table(db: Database) -> ProcessTable:
    return ProcessTable(db)


def row(db: Database, pid: int) -> dict[str, Any]:
    r = db.one("SELECT * FROM procs WHERE pid=?", (pid,))
    assert r is not None
    return r


def test_every_state_is_reachable_and_terminated_is_final() -> None:
    for s in State:
        path_to(s)
    assert TRANSITIONS[State.TERMINATED] == frozenset()
    assert set(TRANSITIONS) == set(State)


def test_create_persists_a_created_row(db: Database, table: ProcessTable) -> None:
    p = table.create("assistant", "hello", parent=None)
    assert p.state is State.CREATED and p.alive
    r = row(db, p.pid)
    assert r["agent"] == "assistant" and r["input"] == "hello" and r["parent"] is None
    assert r["state"] == "created" and r["steps"] == 0
    assert r["reason"] is None and r["exit_status"] is None
    child = table.create("helper", None, parent=p.pid)
    assert row(db, child.pid)["parent"] == p.pid
    assert table.get(p.pid) is p and table.get(child.pid) is child


@pytest.mark.parametrize("old, new", [(o, n) for o, n in itertools.product(State, State)
                                      if legal(o, n)],
                         ids=lambda s: s.value)
def test_legal_transition_works_and_persists(db: Database, table: ProcessTable,
                                             old: State, new: State) -> None:
    p = table.create("a", None)
    move(table, p, old)
    before = p.updated
    table.transition(p, new, **kwargs_for(new))
    assert p.state is new
    assert p.updated >= before
    r = row(db, p.pid)
    assert r["state"] == new.value
    assert r["reason"] == (WaitReason.APPROVAL.value if new is State.WAITING else None)
    assert r["updated"] == p.updated
    if new is State.TERMINATED:
        assert r["exit_status"] == "ok" and not p.alive
        assert p not in table.live()
    else:
        assert p.alive and p in table.live()


@pytest.mark.parametrize("old, new", [(o, n) for o, n in itertools.product(State, State)
                                      if not legal(o, n)],
                         ids=lambda s: s.value)
def test_illegal_transition_raises_and_changes_nothing(db: Database, old: State,
                                                       new: State) -> None:
    seen: list[tuple[State, State]] = []
    table = ProcessTable(db, on_change=lambda proc, was: seen.append((was, proc.state)))
    p = table.create("a", None)
    move(table, p, old)
    seen.clear()
    snapshot = dict(row(db, p.pid))
    with pytest.raises(IllegalTransition, match=f"pid {p.pid}: {old.value} -> {new.value}"):
        table.transition(p, new, reason="message", exit_status="x")
    assert p.state is old
    assert row(db, p.pid) == snapshot
    assert seen == []


def test_the_legal_and_illegal_sets_cover_every_pair() -> None:
    n_legal = sum(legal(o, n) for o, n in itertools.product(State, State))
    assert n_legal == sum(len(v) for v in TRANSITIONS.values()) + len(EXTRA_LEGAL)
    assert not legal(State.TERMINATED, State.TERMINATED)
    assert not legal(State.SUSPENDED, State.RUNNING)   # resume goes through ready
    assert not legal(State.CREATED, State.RUNNING)


def test_waiting_to_waiting_changes_the_reason(db: Database, table: ProcessTable) -> None:
    p = table.create("a", None)
    move(table, p, State.WAITING)
    table.transition(p, State.WAITING, reason=WaitReason.BUDGET.value)
    assert p.state is State.WAITING and p.reason == "budget"
    assert row(db, p.pid)["reason"] == "budget"


@pytest.mark.parametrize("old", [s for s in State if legal(s, State.WAITING)],
                         ids=lambda s: s.value)
def test_waiting_requires_a_reason(db: Database, table: ProcessTable, old: State) -> None:
    p = table.create("a", None)
    move(table, p, old)
    snapshot = dict(row(db, p.pid))
    with pytest.raises(IllegalTransition, match="waiting needs a reason"):
        table.transition(p, State.WAITING)
    assert p.state is old and row(db, p.pid) == snapshot


@pytest.mark.parametrize("old", [s for s in State if legal(s, State.TERMINATED)],
                         ids=lambda s: s.value)
def test_terminated_requires_an_exit_status(db: Database, table: ProcessTable,
                                            old: State) -> None:
    p = table.create("a", None)
    move(table, p, old)
    with pytest.raises(IllegalTransition, match="terminated needs an exit status"):
        table.transition(p, State.TERMINATED)
    assert p.state is old and p.alive
    assert row(db, p.pid)["state"] == old.value


def test_leaving_waiting_clears_the_reason_and_exit_status_sticks(
        db: Database, table: ProcessTable) -> None:
    p = table.create("a", None)
    move(table, p, State.WAITING)
    table.transition(p, State.READY)
    assert p.reason is None and row(db, p.pid)["reason"] is None
    table.transition(p, State.TERMINATED, exit_status="killed")
    assert p.exit_status == "killed" and row(db, p.pid)["exit_status"] == "killed"


def test_record_step_persists_and_transition_keeps_steps(db: Database,
                                                         table: ProcessTable) -> None:
    p = table.create("a", None)
    for _ in range(3):
        table.record_step(p)
    assert p.steps == 3 and row(db, p.pid)["steps"] == 3
    table.transition(p, State.READY)
    assert row(db, p.pid)["steps"] == 3


def test_on_change_sees_old_and_new_states(db: Database) -> None:
    seen: list[tuple[int, State, State, str | None]] = []
    table = ProcessTable(db, on_change=lambda proc, old: seen.append(
        (proc.pid, old, proc.state, proc.reason)))
    p = table.create("a", None)
    assert seen == []  # creating is not a state change
    table.transition(p, State.READY)
    table.transition(p, State.RUNNING)
    table.transition(p, State.WAITING, reason="lock")
    table.transition(p, State.TERMINATED, exit_status="error: x")
    assert seen == [
        (p.pid, State.CREATED, State.READY, None),
        (p.pid, State.READY, State.RUNNING, None),
        (p.pid, State.RUNNING, State.WAITING, "lock"),
        (p.pid, State.WAITING, State.TERMINATED, None),
    ]


def test_on_change_runs_after_the_row_is_written(db: Database) -> None:
    states: list[str] = []
    table = ProcessTable(db, on_change=lambda proc, old: states.append(row(db, proc.pid)["state"]))
    p = table.create("a", None)
    table.transition(p, State.SUSPENDED)
    assert states == ["suspended"]


def test_pids_increase_and_survive_a_new_table(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite3"
    db1 = Database(path)
    t1 = ProcessTable(db1)
    pids = [t1.create("a", None).pid for _ in range(4)]
    assert pids == [1, 2, 3, 4]
    db1.close()
    db2 = Database(path)
    t2 = ProcessTable(db2)
    assert t2.live() == []  # a new kernel holds no process objects
    more = [t2.create("b", None).pid for _ in range(2)]
    assert more == [5, 6]
    assert [r["pid"] for r in db2.query("SELECT pid FROM procs ORDER BY pid")] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(NoSuchProcess, match="pid 1"):
        t2.get(1)
    db2.close()


def test_get_unknown_pid(table: ProcessTable) -> None:
    with pytest.raises(NoSuchProcess, match="no process with pid 42"):
        table.get(42)


def test_leftovers_can_be_adopted_with_their_pid_or_marked_lost(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite3"
    db1 = Database(path)
    t1 = ProcessTable(db1)
    procs = {}
    for s in State:
        procs[s] = p = t1.create(s.value, f"input {s.value}")
        move(t1, p, s)
    db1.close()

    db2 = Database(path)
    t2 = ProcessTable(db2)
    left = {r["pid"]: r for r in t2.leftovers()}
    assert set(left) == {p.pid for s, p in procs.items() if s is not State.TERMINATED}
    running = procs[State.RUNNING]
    adopted = t2.adopt(left[running.pid])
    assert adopted.pid == running.pid and adopted.state is State.CREATED
    assert adopted.input == "input running" and t2.get(running.pid) is adopted
    assert row(db2, running.pid)["state"] == "created"
    waiting = procs[State.WAITING]
    t2.mark_lost(waiting.pid, "lost: no checkpoint")
    assert row(db2, waiting.pid)["exit_status"] == "lost: no checkpoint"
    t2.mark_lost(procs[State.TERMINATED].pid, "lost: no checkpoint")  # finished rows keep theirs
    assert row(db2, procs[State.TERMINATED].pid)["exit_status"] == "ok"
    # new processes still get fresh pids
    assert t2.create("c", None).pid == max(p.pid for p in procs.values()) + 1
    db2.close()


def test_listing_merges_live_memory_and_finished_rows(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite3"
    db1 = Database(path)
    t1 = ProcessTable(db1)
    old = t1.create("old", None)
    t1.transition(old, State.TERMINATED, exit_status="done")
    db1.close()
    db2 = Database(path)
    t2 = ProcessTable(db2)
    live = t2.create("new", None)
    t2.record_step(live)
    live.kill_requested = True
    rows = t2.listing()
    assert [r["pid"] for r in rows] == [old.pid, live.pid]
    assert rows[0]["state"] == "terminated" and rows[0]["exit_status"] == "done"
    assert rows[1]["kill_requested"] is True and rows[1]["steps"] == 1  # from memory
    assert [r["pid"] for r in t2.listing(include_finished=False)] == [live.pid]
    db2.close()


def test_process_as_dict_and_asyncio_fields() -> None:
    p = Process(pid=7, agent="a", parent=None, input="x")
    d = p.as_dict()
    assert d["pid"] == 7 and d["state"] == "created" and d["kill_requested"] is False
    assert not p.resumed.is_set() and p.mailbox.empty() and p.task is None
    q = Process(pid=8, agent="a", parent=None, input=None)
    assert q.mailbox is not p.mailbox and q.resumed is not p.resumed
