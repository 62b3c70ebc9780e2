"""The syscall gate: one table, one dispatcher, every call audited, boundaries honoured."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kernel import syscalls
from kernel.errors import ProcessKilled
from kernel.proc import State
from tests.kernel.support import bare_process, make_kernel, run, until


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-unit-test")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))


def test_the_table_holds_the_required_syscalls() -> None:
    assert {"llm", "tool", "memory_read", "memory_write", "send", "recv", "spawn", "sleep",
            "exit"} <= set(syscalls.TABLE)
    visible = {t["name"] for t in syscalls.model_tools()}
    assert "llm" not in visible and "exit" not in visible and "memory_write" in visible


def test_unknown_syscall_and_bad_arguments_are_refused_and_audited(tmp_path: Path) -> None:
    async def go() -> None:
        k = make_kernel(tmp_path)
        proc = bare_process(k)
        unknown = await k.syscall(proc.pid, "format_disk", {})
        assert not unknown.ok and "unknown syscall 'format_disk'" in unknown.error
        bad = await k.syscall(proc.pid, "sleep", {"seconds": -1})
        assert not bad.ok and "bad arguments" in bad.error and "seconds" in bad.error
        not_obj = await k.syscall(proc.pid, "sleep", ["x"])
        assert not not_obj.ok and "JSON object" in not_obj.error
        extra = await k.syscall(proc.pid, "memory_write", {"key": "a", "value": "b", "evil": 1})
        assert not extra.ok and "evil" in extra.error
        no_pid = await k.syscall(999, "sleep", {"seconds": 1})
        assert not no_pid.ok and "no process with pid 999" in no_pid.error
        rows = k.audit.query(limit=10)
        assert [(r["call"], r["decision"]) for r in rows] == [
            ("format_disk", "deny"), ("sleep", "deny"), ("sleep", "deny"), ("memory_write", "deny")]
        assert all(r["duration_ms"] >= 0 and r["ts"] > 0 for r in rows)
    run(go)


def test_memory_namespaces_own_is_free_others_need_a_grant(tmp_path: Path) -> None:
    async def go() -> None:
        k = make_kernel(tmp_path)
        proc = bare_process(k)
        assert (await k.syscall(proc.pid, "memory_write", {"key": "k", "value": "v"})).ok
        got = await k.syscall(proc.pid, "memory_read", {"key": "k"})
        assert got.value == "v"
        assert (await k.syscall(proc.pid, "memory_read", {})).value == ["k"]
        shared = await k.syscall(proc.pid, "memory_read", {"namespace": "shared/family"})
        assert not shared.ok and "memory.read:shared/family" in shared.error
        k.grants.set("assistant", "memory.read:shared/*", "allow")
        assert (await k.syscall(proc.pid, "memory_read", {"namespace": "shared/family"})).ok
    run(go)


def test_send_and_recv_between_processes(tmp_path: Path) -> None:
    async def go() -> None:
        k = make_kernel(tmp_path)
        a, b = bare_process(k), bare_process(k)
        waiter = asyncio.create_task(k.syscall(b.pid, "recv", {"timeout": 5}))
        await until(lambda: b.state is State.WAITING)
        assert b.reason == "message"
        sent = await k.syscall(a.pid, "send", {"to": str(b.pid), "text": "hi"})
        assert sent.value == {"delivered_to": [b.pid]}
        got = await waiter
        assert got.value[0]["text"] == "hi" and got.value[0]["from_pid"] == a.pid
        assert b.state is State.RUNNING
    run(go)


def test_kill_is_honoured_at_the_next_boundary(tmp_path: Path) -> None:
    async def go() -> None:
        k = make_kernel(tmp_path)
        proc = bare_process(k)
        proc.kill_requested = True
        with pytest.raises(ProcessKilled):
            await k.syscall(proc.pid, "memory_read", {})
        assert k.audit.query(limit=1)[0]["decision"] == "killed"
    run(go)


def test_kill_wakes_a_process_waiting_in_a_syscall(tmp_path: Path) -> None:
    async def go() -> None:
        k = make_kernel(tmp_path)
        proc = bare_process(k)
        proc.task = asyncio.create_task(k.syscall(proc.pid, "sleep", {"seconds": 3600}))
        await until(lambda: proc.state is State.WAITING)
        k.kill(proc.pid)
        with pytest.raises(asyncio.CancelledError):
            await proc.task
    run(go)


def test_suspend_parks_at_the_boundary_and_resume_continues(tmp_path: Path) -> None:
    async def go() -> None:
        k = make_kernel(tmp_path)
        proc = bare_process(k)
        k.suspend(proc.pid)
        call = asyncio.create_task(k.syscall(proc.pid, "memory_read", {}))
        await until(lambda: proc.state is State.SUSPENDED)
        assert (k.where.checkpoints / f"{proc.pid}.json").exists()
        await asyncio.sleep(0.05)
        assert not call.done()
        k.resume(proc.pid)
        assert (await call).ok
        assert proc.state is State.RUNNING
    run(go)


def test_a_handler_bug_becomes_an_error_result_not_a_crash(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(ctx: syscalls.CallContext, args: object) -> None:
        raise ZeroDivisionError("boom")

    spec = syscalls.TABLE["sleep"]
    monkeypatch.setitem(syscalls.TABLE, "sleep", syscalls.Syscall("sleep", spec.args, broken, ""))

    async def go() -> None:
        k = make_kernel(tmp_path)
        proc = bare_process(k)
        res = await k.syscall(proc.pid, "sleep", {"seconds": 1})
        assert not res.ok and "failed inside the kernel" in res.error
        assert k.audit.query(limit=1)[0]["decision"] == "error"
    run(go)


def test_spawn_needs_the_capability(tmp_path: Path) -> None:
    async def go() -> None:
        k = make_kernel(tmp_path)
        proc = bare_process(k)
        refused = await k.syscall(proc.pid, "spawn", {"agent": "assistant", "input": "x"})
        assert not refused.ok and "agents.spawn" in refused.error
    run(go)
