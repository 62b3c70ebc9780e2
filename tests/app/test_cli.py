"""End to end: the real CLI, a real kernel process, the real anthropic client against the
fake Messages API, real files."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.replies import rate_limited, overloaded, text, tool_use
from tests.fixtures.kernel import TEST_KEY, KernelEnv


def tool_results(kenv: KernelEnv) -> list[dict[str, Any]]:
    """tool_result blocks the kernel fed back to the model, in order."""
    out = []
    for req in kenv.server.requests:
        for msg in req.body.get("messages", [])[-1:]:
            if msg["role"] == "user" and isinstance(msg["content"], list):
                out += [b for b in msg["content"] if b.get("type") == "tool_result"]
    return out


def test_ask_writes_and_reads_a_file_with_the_grant(kernel_env: KernelEnv) -> None:
    target = kernel_env.work / "notes.txt"
    kernel_env.server.script(
        tool_use("files_write", {"path": str(target), "content": "hello from the agent"}),
        tool_use("files_read", {"path": str(target)}),
        text("I wrote notes.txt and read it back."))
    kernel_env.run("kernel", "start")
    kernel_env.run("grants", "allow", "assistant", f"fs.write:{kernel_env.work}/**")
    kernel_env.run("grants", "allow", "assistant", f"fs.read:{kernel_env.work}/**")

    res = kernel_env.run("ask", "write a note and read it back")

    assert res.stdout.strip() == "I wrote notes.txt and read it back."
    assert "files_write" in res.stderr and "files_read" in res.stderr  # progress on stderr
    assert target.read_text() == "hello from the agent"
    results = tool_results(kenv=kernel_env)
    assert len(results) == 2 and not any(r["is_error"] for r in results)
    assert "hello from the agent" in results[1]["content"]
    # The real client sent the key, streamed, and offered the driver's tools.
    first = kernel_env.server.requests[0]
    assert first.api_key == TEST_KEY
    assert first.body["stream"] is True
    assert {"files_write", "files_read", "files_delete"} <= {t["name"] for t in first.body["tools"]}
    calls = [(r["call"], r["decision"]) for r in kernel_env.audit()]
    assert calls == [("llm", "allow"), ("tool", "allow"), ("llm", "allow"), ("tool", "allow"),
                     ("llm", "allow"), ("exit", "allow")]


def test_without_the_grant_nothing_is_written_and_the_refusal_is_audited(kernel_env: KernelEnv) -> None:
    target = kernel_env.work / "nope.txt"
    kernel_env.server.script(tool_use("files_write", {"path": str(target), "content": "x"}),
                             text("I was not allowed to write it."))
    kernel_env.run("kernel", "start")
    kernel_env.run("grants", "deny", "assistant", "fs.write:**")

    res = kernel_env.run("ask", "write nope.txt")

    assert res.stdout.strip() == "I was not allowed to write it."
    assert not target.exists()
    [result] = tool_results(kernel_env)
    assert result["is_error"] and "permission denied" in result["content"]
    tool_rows = [r for r in kernel_env.audit() if r["call"] == "tool"]
    assert [r["decision"] for r in tool_rows] == ["deny"]
    assert "permission denied" in tool_rows[0]["result"]


def test_a_background_agent_without_grants_is_refused_by_default(kernel_env: KernelEnv,
                                                                 tmp_path: Path) -> None:
    spec = tmp_path / "tidy.toml"
    spec.write_text('name = "tidy"\ninstructions = "Tidy up."\npriority = "background"\n')
    target = kernel_env.work / "made-by-tidy.txt"
    kernel_env.server.script(tool_use("files_write", {"path": str(target), "content": "x"}),
                             text("Could not write."))
    kernel_env.run("kernel", "start")
    kernel_env.run("agents", "add", str(spec))
    pid = kernel_env.json("agents", "start", "tidy", "--input", "go")["pid"]
    kernel_env.wait_for(lambda: _state(kernel_env, pid) == "terminated", what="tidy to finish")
    assert not target.exists()
    assert [r["decision"] for r in kernel_env.audit() if r["call"] == "tool"] == ["deny"]
    assert kernel_env.json("approvals", "list") == []  # default deny never asks


def _state(kenv: KernelEnv, pid: int) -> str:
    procs = kenv.json("agents", "list")["processes"]
    return next(p["state"] for p in procs if p["pid"] == pid)


def test_dotdot_and_symlink_escapes_are_refused(kernel_env: KernelEnv) -> None:
    allowed = kernel_env.work / "allowed"
    outside = kernel_env.work / "outside"
    allowed.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    (allowed / "link-dir").symlink_to(outside)
    (allowed / "link-file").symlink_to(outside / "secret.txt")
    kernel_env.server.script(
        tool_use("files_write", {"path": f"{allowed}/../outside/dotdot.txt", "content": "x"}),
        tool_use("files_write", {"path": f"{allowed}/link-dir/via-link.txt", "content": "x"}),
        tool_use("files_read", {"path": f"{allowed}/link-file"}),
        tool_use("files_write", {"path": f"{allowed}/link-file", "content": "overwritten"}),
        tool_use("files_delete", {"path": f"{allowed}/link-dir/secret.txt"}),
        text("All refused."))
    kernel_env.run("kernel", "start")
    for verb in ("read", "write", "delete"):
        kernel_env.run("grants", "allow", "assistant", f"fs.{verb}:{allowed}/**")
    # Anything not granted would be *asked*; make it a denial so the test cannot hang.
    kernel_env.run("grants", "deny", "assistant", f"fs.*:{outside}/**")

    res = kernel_env.run("ask", "try to escape")

    assert res.stdout.strip() == "All refused."
    results = tool_results(kernel_env)
    assert len(results) == 5
    assert all(r["is_error"] and "permission denied" in r["content"] for r in results)
    assert "top secret" not in " ".join(r["content"] for r in results)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "top secret"
    denied = [r for r in kernel_env.audit() if r["call"] == "tool"]
    assert [r["decision"] for r in denied] == ["deny"] * 5
    # The audit names the resolved target, so a person sees where the escape pointed.
    assert str(outside) in denied[0]["result"]


def test_a_revoke_between_two_tool_calls_stops_the_second(kernel_env: KernelEnv) -> None:
    first, second = kernel_env.work / "first.txt", kernel_env.work / "second.txt"
    revoked = threading.Event()
    replies = iter([tool_use("files_write", {"path": str(first), "content": "1"}),
                    tool_use("files_write", {"path": str(second), "content": "2"}),
                    text("The second write was refused.")])

    def responder(body: dict[str, Any]) -> Any:
        if len(body["messages"]) == 3:  # the model's second turn: hold it until revoked
            assert revoked.wait(30)
        return next(replies)

    kernel_env.server.responder = responder
    kernel_env.run("kernel", "start")
    kernel_env.run("grants", "allow", "assistant", f"fs.write:{kernel_env.work}/**")
    ask = kernel_env.popen("ask", "write two files")
    kernel_env.wait_for(first.exists, what="the first write")
    kernel_env.run("grants", "revoke", "assistant", f"fs.write:{kernel_env.work}/**")
    kernel_env.run("grants", "deny", "assistant", "fs.write:**")
    revoked.set()
    out, err = ask.communicate(timeout=60)
    assert ask.returncode == 0, err
    assert out.strip() == "The second write was refused."
    assert first.read_text() == "1"
    assert not second.exists()
    assert [r["decision"] for r in kernel_env.audit() if r["call"] == "tool"] == ["allow", "deny"]


def _approve_next(kenv: KernelEnv, answer: str) -> dict[str, Any]:
    pending = kenv.wait_for(lambda: kenv.json("approvals", "list"), what="an approval request")
    kenv.run("approvals", answer, str(pending[0]["id"]))
    return pending[0]


def test_an_approval_answered_yes_lets_the_call_through(kernel_env: KernelEnv) -> None:
    target = kernel_env.work / "approved.txt"
    kernel_env.server.script(tool_use("files_write", {"path": str(target), "content": "ok"}),
                             text("Written after approval."))
    kernel_env.run("kernel", "start")
    ask = kernel_env.popen("ask", "write approved.txt")
    request = _approve_next(kernel_env, "approve")
    out, err = ask.communicate(timeout=60)
    assert ask.returncode == 0, err
    assert request["capability"] == f"fs.write:{target}"
    assert f"approvals approve {request['id']}" in err  # told the person how to answer
    assert out.strip() == "Written after approval."
    assert target.read_text() == "ok"
    assert [r["decision"] for r in kernel_env.audit() if r["call"] == "tool"] == ["allow (approved)"]
    assert kernel_env.json("approvals", "list", "--all")[0]["status"] == "approved"


def test_an_approval_answered_no_refuses_the_call(kernel_env: KernelEnv) -> None:
    target = kernel_env.work / "denied.txt"
    kernel_env.server.script(tool_use("files_write", {"path": str(target), "content": "no"}),
                             text("You said no, so I did not write it."))
    kernel_env.run("kernel", "start")
    ask = kernel_env.popen("ask", "write denied.txt")
    _approve_next(kernel_env, "deny")
    out, err = ask.communicate(timeout=60)
    assert ask.returncode == 0, err
    assert out.strip() == "You said no, so I did not write it."
    assert not target.exists()
    [result] = tool_results(kernel_env)
    assert result["is_error"] and "did not approve" in result["content"]
    assert [r["decision"] for r in kernel_env.audit() if r["call"] == "tool"] == ["deny (not approved)"]


def test_rate_limits_and_overload_are_retried_and_malformed_calls_reported(kernel_env: KernelEnv) -> None:
    kernel_env.server.script(
        rate_limited(retry_after=0.2),
        overloaded(retry_after=0.2),
        tool_use("files_write", {"paht": "/tmp/x"}),          # malformed: wrong field name
        tool_use("no_such_tool", {}),
        text("Recovered."))
    kernel_env.run("kernel", "start")
    res = kernel_env.run("ask", "do something")
    assert res.stdout.strip() == "Recovered."
    assert "429" in res.stderr and "529" in res.stderr  # retries shown as progress
    bad_args, unknown = tool_results(kernel_env)
    assert bad_args["is_error"] and "bad arguments" in bad_args["content"]
    assert unknown["is_error"] and "unknown tool" in unknown["content"]
    assert kernel_env.json("kernel", "status")["running"] is True


def test_a_provider_that_refuses_the_key_ends_with_a_clear_message(kernel_env: KernelEnv) -> None:
    from tests.fakes.replies import server_error

    kernel_env.server.script(server_error(401))
    kernel_env.run("kernel", "start")
    res = kernel_env.run("ask", "hello", check=False)
    assert res.returncode == 1
    assert "API key" in res.stderr and "auth set-key" in res.stderr


def test_kernel_start_is_idempotent_and_status_reports_it(kernel_env: KernelEnv) -> None:
    first = kernel_env.json("kernel", "start")
    second = kernel_env.json("kernel", "start")
    assert first["pid"] == second["pid"]
    status = kernel_env.json("kernel", "status")
    assert status["running"] is True and status["pid"] == first["pid"]
    assert status["version"] and status["socket"].endswith("kernel.sock")
    mode = stat.S_IMODE(os.stat(status["socket"]).st_mode)
    assert mode == 0o600
    import httpx
    with httpx.Client(transport=httpx.HTTPTransport(uds=status["socket"]),
                      base_url="http://deskpilot") as http:
        schema = http.get("/openapi.json").json()
    assert {"/status", "/agents/{name}/start", "/procs/{pid}/syscall", "/grants", "/approvals",
            "/audit", "/budget", "/events"} <= set(schema["paths"])
    assert kernel_env.run("kernel", "stop").stdout.strip() == "kernel stopped"
    assert kernel_env.json("kernel", "status")["running"] is False


def test_two_simultaneous_starts_give_one_kernel(kernel_env: KernelEnv) -> None:
    import json
    starters = [kernel_env.popen("kernel", "start", "--json") for _ in range(3)]
    pids = {json.loads(p.communicate(timeout=60)[0])["pid"] for p in starters}
    assert len(pids) == 1
    kernels = subprocess.run(["pgrep", "-f", "kernel --foreground"], capture_output=True,
                             text=True).stdout.split()
    assert str(pids.pop()) in kernels


def test_a_stale_socket_from_a_crashed_kernel_is_cleaned_up(kernel_env: KernelEnv) -> None:
    pid = kernel_env.json("kernel", "start")["pid"]
    os.kill(pid, signal.SIGKILL)
    kernel_env.wait_for(lambda: not Path(f"/proc/{pid}").exists() or
                        "zombie" in Path(f"/proc/{pid}/status").read_text().lower(),
                        what="the kernel to die")
    socket_path = kernel_env.home / "run" / "kernel.sock"
    assert socket_path.exists()  # left behind by the crash
    res = kernel_env.run("agents", "list", check=False)
    assert res.returncode == 1 and "not running" in res.stderr
    new = kernel_env.json("kernel", "start")
    assert new["pid"] != pid and new["running"]


def test_the_api_key_is_never_written_under_deskpilot_home(kernel_env: KernelEnv) -> None:
    kernel_env.server.script(tool_use("files_write", {"path": str(kernel_env.work / "k.txt"),
                                                      "content": "key is " + TEST_KEY}),
                             text("done " + TEST_KEY))
    kernel_env.run("kernel", "start")
    kernel_env.run("grants", "allow", "assistant", f"fs.write:{kernel_env.work}/**")
    kernel_env.run("ask", "try to leak")
    kernel_env.run("kernel", "stop")
    hits = subprocess.run(["grep", "-r", "-l", TEST_KEY, str(kernel_env.home)],
                          capture_output=True, text=True)
    assert hits.stdout == "", f"key found in: {hits.stdout}"


def test_a_suspended_agent_survives_a_kernel_restart_and_resumes(kernel_env: KernelEnv) -> None:
    target = kernel_env.work / "after-resume.txt"
    release = threading.Event()
    replies = iter([tool_use("files_write", {"path": str(target), "content": "resumed"}),
                    text("Finished after the restart.")])

    def responder(body: dict[str, Any]) -> Any:
        if len(body["messages"]) == 1:
            assert release.wait(30)  # hold the first turn until the suspend was requested
        return next(replies)

    kernel_env.server.responder = responder
    kernel_env.run("kernel", "start")
    kernel_env.run("grants", "allow", "assistant", f"fs.write:{kernel_env.work}/**")
    pid = kernel_env.json("agents", "start", "assistant", "--input", "write it")["pid"]
    kernel_env.run("agents", "suspend", str(pid))
    release.set()
    kernel_env.wait_for(lambda: _state(kernel_env, pid) == "suspended", what="suspension")
    assert not target.exists()  # parked at the boundary before the tool ran
    procs = kernel_env.json("agents", "list")["processes"]
    assert next(p for p in procs if p["pid"] == pid)["reason"] == "requested"

    kernel_env.run("kernel", "stop")
    kernel_env.run("kernel", "start")
    assert _state(kernel_env, pid) == "suspended"  # a person's suspend outlives the restart
    assert not target.exists()
    kernel_env.run("agents", "resume", str(pid))
    kernel_env.wait_for(lambda: _state(kernel_env, pid) == "terminated", what="the resumed run")
    assert target.read_text() == "resumed"
    logs = kernel_env.json("agents", "logs", str(pid))
    assert logs[-1]["type"] == "proc.exit" and logs[-1]["answer"] == "Finished after the restart."
    # The model saw the whole conversation again, from the checkpoint.
    last = kernel_env.server.requests[-1].body["messages"]
    assert last[0]["content"] == "write it" and len(last) == 3


def test_several_agents_share_a_rate_limit_without_drawing_a_429(kernel_env: KernelEnv,
                                                                 tmp_path: Path) -> None:
    """Five agents, ten model calls, a provider allowing six requests a minute: the
    kernel makes the rest wait for the window instead of drawing 429s."""
    kernel_env.server.set_limits(rpm=6, itpm=40_000)

    def responder(body: dict[str, Any]) -> Any:
        first = body["messages"][0]["content"]
        first = first if isinstance(first, str) else first[0]["text"]
        if len(body["messages"]) == 1:
            return tool_use("memory_write", {"key": "seen", "value": first})
        return text(f"done: {first}")

    kernel_env.server.responder = responder
    spec = tmp_path / "worker.toml"
    spec.write_text('name = "worker"\ninstructions = "Remember what you are told."\n'
                    'priority = "background"\nmax_tokens = 256\n')
    kernel_env.run("kernel", "start")
    kernel_env.run("agents", "add", str(spec))
    kernel_env.run("budget", "set", "requests_per_minute", "6")
    assert kernel_env.json("budget", "show")["budget"]["requests_per_minute"] == 6
    pids = [kernel_env.json("agents", "start", "worker", "--input", f"job {i}")["pid"]
            for i in range(5)]

    def waiting_for_budget() -> bool:
        procs = kernel_env.json("agents", "list")["processes"]
        return any((p["reason"] or "").startswith("budget") for p in procs if p["pid"] in pids)

    kernel_env.wait_for(waiting_for_budget, timeout=30, what="an agent waiting for the budget")
    kernel_env.wait_for(lambda: all(_state(kernel_env, p) == "terminated" for p in pids),
                        timeout=120, what="all workers to finish")

    procs = {p["pid"]: p for p in kernel_env.json("agents", "list")["processes"]}
    assert [procs[p]["exit_status"] for p in pids] == ["ok"] * 5
    assert kernel_env.server.count_429 == 0
    assert kernel_env.server.max_window_usage("requests") <= 6
    report = kernel_env.json("budget", "show")
    assert report["agents"]["worker"]["today"]["requests"] == 10
    # Tools and instructions are the same for every worker: read from the prompt cache.
    assert report["agents"]["worker"]["today"]["cache_read_input_tokens"] > 0


def test_spend_survives_a_restart_and_a_spent_cap_holds_agents_until_raised(
        kernel_env: KernelEnv) -> None:
    kernel_env.server.script(text("first"), text("second"))
    kernel_env.run("kernel", "start")
    assert kernel_env.run("ask", "one").stdout.strip() == "first"
    spent = kernel_env.json("budget", "show")["spend"]["usd_today"]
    assert spent > 0
    kernel_env.run("kernel", "stop")
    kernel_env.run("kernel", "start")
    report = kernel_env.json("budget", "show")
    assert report["spend"]["usd_today"] == spent  # replayed from disk, not reset
    assert report["agents"]["assistant"]["today"]["requests"] == 1

    kernel_env.run("budget", "set", "usd_per_day", str(spent))  # already used up
    ask = kernel_env.popen("ask", "two")
    kernel_env.wait_for(lambda: any("spend cap" in (p["reason"] or "")
                                    for p in kernel_env.json("agents", "list")["processes"]),
                        what="the agent to wait for the spend cap")
    time.sleep(0.5)
    assert len(kernel_env.server.requests) == 1  # nothing was sent meanwhile
    kernel_env.run("budget", "set", "usd_per_day", "none")
    out, err = ask.communicate(timeout=60)
    assert ask.returncode == 0, err
    assert out.strip() == "second"
    assert "spend cap" in err  # the person was told why it waited


def test_a_price_set_from_the_cli_applies_at_once_and_survives_a_restart(
        kernel_env: KernelEnv) -> None:
    kernel_env.server.script(text("first"), text("second"))
    kernel_env.run("kernel", "start")
    out = kernel_env.run("budget", "price", "claude-test", "2", "10").stdout
    assert "claude-test: $2 in, $10 out, $2.5 cache write, $0.2 cache read" in out
    assert kernel_env.run("ask", "one").stdout.strip() == "first"
    usage = kernel_env.server.usage_log[-1]
    expected = (usage.input_tokens * 2 + usage.output_tokens * 10
                + usage.cache_creation_input_tokens * 2.5
                + usage.cache_read_input_tokens * 0.2) / 1e6
    assert kernel_env.json("budget", "show")["spend"]["usd_today"] == pytest.approx(expected)

    bad = kernel_env.run("budget", "price", "claude-test", "--", "-1", "10", check=False)
    assert bad.returncode != 0 and "must be a finite number >= 0" in bad.stderr
    kernel_env.run("kernel", "stop")
    kernel_env.run("kernel", "start")
    report = kernel_env.json("budget", "show")
    assert report["prices"]["claude-test"] == {"input": 2.0, "output": 10.0,
                                               "cache_write": 2.5, "cache_read": 0.2}
    assert "claude-test" in kernel_env.run("budget", "show").stdout
