"""The `tool` syscall: resolution, capability decisions, subtrees, approvals."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kernel.proc import State
from tests.kernel.support import bare_process, make_kernel, run, until


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-unit-test")
    (tmp_path / "user").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user" / ".local" / "share"))


def test_tilde_paths_resolve_against_home_and_match_tilde_grants(tmp_path: Path) -> None:
    async def go() -> None:
        k = make_kernel(tmp_path)
        k.grants.set("assistant", "fs.write:~/Documents/**", "allow")
        proc = bare_process(k)
        res = await k.syscall(proc.pid, "tool", {"name": "files_write", "input": {
            "path": "~/Documents/a.txt", "content": "x"}})
        assert res.ok, res.error
        assert (tmp_path / "user" / "Documents" / "a.txt").read_text() == "x"
    run(go)


def test_deleting_a_folder_needs_every_entry_inside_it(tmp_path: Path) -> None:
    work = tmp_path / "user" / "work"
    (work / "keep").mkdir(parents=True)
    (work / "keep" / "precious.txt").write_text("p")
    (work / "junk.txt").write_text("j")

    async def go() -> None:
        k = make_kernel(tmp_path)
        k.grants.set("assistant", f"fs.delete:{work}/**", "allow")
        k.grants.set("assistant", f"fs.delete:{work}/keep/**", "deny")
        proc = bare_process(k)
        res = await k.syscall(proc.pid, "tool", {"name": "files_delete", "input": {"path": str(work)}})
        assert not res.ok and "permission denied" in res.error
        assert (work / "keep" / "precious.txt").exists()
        ok = await k.syscall(proc.pid, "tool", {"name": "files_delete",
                                                "input": {"path": str(work / "junk.txt")}})
        assert ok.ok, ok.error
        assert not (work / "junk.txt").exists()
    run(go)


def test_a_one_level_grant_does_not_cover_copying_a_deeper_tree(tmp_path: Path) -> None:
    src = tmp_path / "user" / "d"
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "sub" / "deep" / "x.txt").write_text("x")

    async def go() -> None:
        k = make_kernel(tmp_path, approval_timeout=0.2)
        k.grants.set("assistant", f"fs.read:{src}/*", "allow")
        k.grants.set("assistant", f"fs.write:{tmp_path}/user/out/**", "allow")
        proc = bare_process(k)
        res = await k.syscall(proc.pid, "tool", {"name": "files_copy", "input": {
            "src": str(src / "sub"), "dst": str(tmp_path / "user" / "out" / "sub")}})
        # sub itself is covered, sub/deep is not: the assistant's default (ask) applies to
        # the whole call, and unanswered it is a denial.
        assert not res.ok and "did not approve" in res.error
        assert k.approvals.listing()[0]["capability"] == f"fs.read:{src}/sub/**"
        assert not (tmp_path / "user" / "out").exists()
    run(go)


def test_ask_waits_for_approval_and_times_out_to_deny(tmp_path: Path) -> None:
    target = tmp_path / "user" / "t.txt"

    async def go() -> None:
        k = make_kernel(tmp_path, approval_timeout=0.3)
        proc = bare_process(k)
        call = asyncio.create_task(k.syscall(proc.pid, "tool", {"name": "files_write", "input": {
            "path": str(target), "content": "x"}}))
        await until(lambda: proc.state is State.WAITING)
        assert proc.reason == f"approval: fs.write:{target}"
        res = await call
        assert not res.ok and "did not approve" in res.error
        assert not target.exists()
        assert k.approvals.listing()[0]["status"] == "expired"
        assert proc.state is State.RUNNING
    run(go)


def test_an_unknown_tool_and_bad_tool_arguments_are_refused(tmp_path: Path) -> None:
    async def go() -> None:
        k = make_kernel(tmp_path)
        proc = bare_process(k)
        res = await k.syscall(proc.pid, "tool", {"name": "rm_rf", "input": {}})
        assert not res.ok and "unknown tool 'rm_rf'" in res.error
        res = await k.syscall(proc.pid, "tool", {"name": "files_read", "input": {"path": 3,
                                                                                 "bogus": 1}})
        assert not res.ok and "bad arguments" in res.error
        assert [r["decision"] for r in k.audit.query()] == ["invalid", "invalid"]
    run(go)
