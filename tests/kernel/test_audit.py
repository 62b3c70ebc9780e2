"""kernel.audit: recording syscalls, querying them back, and keeping secrets out."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kernel.audit import MAX_FIELD, AuditLog, redact_args
from kernel.db import Database

KEY = "sk-ant-api03-" + "AbC_d-9" * 10


@pytest.fixture
def audit(db: Database) -> AuditLog:
    return AuditLog(db)


def rec(log: AuditLog, agent: str = "a", pid: int | None = 1, call: str = "tool",
        args: dict[str, Any] | None = None, result: str = "ok", **kw: Any) -> int:
    return log.record(agent=agent, pid=pid, call=call, args=args or {}, decision=kw.get(
        "decision", "allow"), result=result, duration_ms=kw.get("duration_ms", 1.5))


def test_record_and_query_roundtrip(audit: AuditLog) -> None:
    rid = audit.record(agent="assistant", pid=3, call="tool",
                       args={"tool": "files_read", "input": {"path": "/tmp/x", "n": 2}},
                       decision="allow", result="42 bytes", duration_ms=12.5)
    assert rid >= 1
    [r] = audit.query()
    assert r["id"] == rid and r["agent"] == "assistant" and r["pid"] == 3
    assert r["call"] == "tool" and r["decision"] == "allow" and r["result"] == "42 bytes"
    assert r["duration_ms"] == 12.5 and isinstance(r["ts"], float)
    assert r["args"] == {"tool": "files_read", "input": {"path": "/tmp/x", "n": 2}}


def test_ids_increase(audit: AuditLog) -> None:
    ids = [rec(audit) for _ in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_query_filters_limit_and_order(audit: AuditLog) -> None:
    for i in range(10):
        rec(audit, agent="a" if i % 2 == 0 else "b", pid=i % 3, result=f"r{i}")
    rec(audit, agent="a", pid=None, result="no pid")
    # oldest first, all of them
    assert [r["result"] for r in audit.query()] == [f"r{i}" for i in range(10)] + ["no pid"]
    # limit keeps the most recent, still oldest first
    assert [r["result"] for r in audit.query(limit=3)] == ["r8", "r9", "no pid"]
    assert [r["result"] for r in audit.query(agent="b")] == ["r1", "r3", "r5", "r7", "r9"]
    assert [r["result"] for r in audit.query(pid=0)] == ["r0", "r3", "r6", "r9"]
    assert [r["result"] for r in audit.query(agent="a", pid=0)] == ["r0", "r6"]
    assert [r["result"] for r in audit.query(agent="a", limit=2)] == ["r8", "no pid"]
    assert audit.query(agent="nobody") == []
    assert audit.query(limit=0) == []


@pytest.mark.parametrize("key", ["api_key", "API-KEY", "apikey", "Authorization",
                                 "authorization", "token", "access_token", "x-api-key",
                                 "password", "client_secret", "Cookie"])
def test_secret_looking_keys_are_redacted(audit: AuditLog, key: str) -> None:
    rec(audit, args={key: "hunter2-value", "path": "/tmp/x"})
    [r] = audit.query()
    assert r["args"] == {key: "[redacted]", "path": "/tmp/x"}


def test_redaction_is_recursive(audit: AuditLog) -> None:
    args = {"input": {"headers": {"Authorization": "Bearer abc", "Accept": "json"},
                      "items": [{"token": {"nested": "x"}}, "plain", 3, None]}}
    rec(audit, args=args)
    [r] = audit.query()
    assert r["args"] == {"input": {"headers": {"Authorization": "[redacted]", "Accept": "json"},
                                   "items": [{"token": "[redacted]"}, "plain", 3, None]}}


def test_anthropic_keys_are_redacted_anywhere(audit: AuditLog, db: Database) -> None:
    rec(audit, args={"text": f"my key is {KEY}, ok", "list": [KEY, f"x{KEY}y"]},
        result=f"echo {KEY}")
    [r] = audit.query()
    assert r["args"] == {"text": "my key is [redacted], ok", "list": ["[redacted]", "x[redacted]"]}
    assert r["result"] == "echo [redacted]"
    raw = json.dumps(db.query("SELECT * FROM audit"))
    assert "sk-ant-" not in raw and "AbC_d" not in raw


def test_injected_redact_function_applies_to_args_and_result(db: Database) -> None:
    secret = "s3cr3t-home-address"
    log = AuditLog(db, redact_text=lambda s: s.replace(secret, "<private>"))
    log.record(agent="a", pid=1, call="tool", args={"note": f"at {secret}", "deep": [secret]},
               decision="allow", result=f"wrote {secret}", duration_ms=0)
    [r] = log.query()
    assert r["args"] == {"note": "at <private>", "deep": ["<private>"]}
    assert r["result"] == "wrote <private>"
    assert secret not in json.dumps(db.query("SELECT * FROM audit"))


def test_long_fields_are_truncated(audit: AuditLog) -> None:
    long = "x" * (MAX_FIELD + 500)
    rec(audit, args={"content": long, "short": "y" * MAX_FIELD}, result=long)
    [r] = audit.query()
    expected = "x" * MAX_FIELD + "...(+500)"
    assert r["result"] == expected
    assert r["args"]["content"] == expected
    assert r["args"]["short"] == "y" * MAX_FIELD  # at the limit: untouched


def test_truncation_happens_after_redaction() -> None:
    # A key straddling the cut is still removed, not half-kept.
    text = "a" * (MAX_FIELD - 10) + KEY
    out = redact_args(text, lambda s: s)
    assert "sk-ant" not in out and out.endswith("[redacted]")


def test_redact_args_leaves_other_values_alone() -> None:
    ident = lambda s: s  # noqa: E731
    assert redact_args(5, ident) == 5
    assert redact_args(None, ident) is None
    assert redact_args(True, ident) is True
    assert redact_args(("a", "b"), ident) == ["a", "b"]
    assert redact_args({"path": "/x", "n": 1.5}, ident) == {"path": "/x", "n": 1.5}


def test_unserialisable_args_are_stored_as_text(audit: AuditLog) -> None:
    rec(audit, args={"path": Path("/tmp/x"), "raw": b"\x00"})
    [r] = audit.query()
    assert r["args"] == {"path": "/tmp/x", "raw": "b'\\x00'"}
