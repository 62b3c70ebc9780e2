"""The syscall gate: one table, one dispatcher.

Invariants:
- Agents reach the world only through `dispatch`. It checks the pid, honours kill and
  suspend requests (the syscall boundary), refuses unknown calls and bad arguments with a
  clear message, runs the handler and writes one audit record, whatever happened.
- A handler never crashes the kernel: anything it raises becomes an error result.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kernel import ipc, llm, toolcalls
from kernel.errors import ModelError, ProcessKilled, Refused
from kernel.proc import NoSuchProcess, Process

if TYPE_CHECKING:
    from kernel.core import Kernel

log = logging.getLogger(__name__)


@dataclass
class CallContext:
    """What a handler knows about the call in flight; it sets `decision` when it decides."""

    kernel: "Kernel"
    proc: Process
    call: str
    decision: str = "allow"
    audit_args: dict[str, Any] | None = None  # a summary to audit instead of the raw args
    audit_result: str | None = None  # a summary to audit instead of the full result


@dataclass
class SyscallResult:
    ok: bool
    value: Any = None
    error: str | None = None
    decision: str = "allow"

    def text(self) -> str:
        if not self.ok:
            return self.error or "error"
        return self.value if isinstance(self.value, str) else json.dumps(
            self.value, default=str, ensure_ascii=False)


Handler = Callable[[CallContext, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Syscall:
    name: str
    args: type[BaseModel]
    handler: Handler
    description: str
    model_visible: bool = False  # offered to models as a tool of the same name


class ExitArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(default="ok", max_length=200)
    answer: str | None = None


async def sys_exit(ctx: CallContext, args: ExitArgs) -> dict[str, Any]:
    ctx.kernel.finish(ctx.proc, args.status, args.answer)
    return {"status": args.status}


# The one syscall table. Adding a call means adding a row here.
TABLE: dict[str, Syscall] = {s.name: s for s in [
    Syscall("llm", llm.LlmArgs, llm.sys_llm, "One model call, scheduled against the budget."),
    Syscall("tool", toolcalls.ToolArgs, toolcalls.sys_tool,
            "Run a driver operation after the capability check."),
    Syscall("memory_read", ipc.MemoryReadArgs, ipc.sys_memory_read,
            "Read a value (or list keys) from a memory namespace; your own is agent/<your name>.",
            model_visible=True),
    Syscall("memory_write", ipc.MemoryWriteArgs, ipc.sys_memory_write,
            "Store a value under a key in a memory namespace.", model_visible=True),
    Syscall("send", ipc.SendArgs, ipc.sys_send,
            "Send a text message to another agent's mailbox (by name or pid).", model_visible=True),
    Syscall("recv", ipc.RecvArgs, ipc.sys_recv,
            "Take messages from your mailbox, waiting up to `timeout` seconds for one.",
            model_visible=True),
    Syscall("spawn", ipc.SpawnArgs, ipc.sys_spawn,
            "Start another agent with a first message; returns its pid.", model_visible=True),
    Syscall("sleep", ipc.SleepArgs, ipc.sys_sleep, "Wait for some seconds.", model_visible=True),
    Syscall("exit", ExitArgs, sys_exit, "End this process with a status and an answer."),
]}


def model_tools() -> list[dict[str, Any]]:
    """Tool definitions for the syscalls that models may call directly."""
    out = []
    for s in TABLE.values():
        if s.model_visible:
            schema = s.args.model_json_schema()
            schema.pop("title", None)
            for prop in schema.get("properties", {}).values():
                prop.pop("title", None)
            out.append({"name": s.name, "description": s.description, "input_schema": schema})
    return out


async def boundary(kernel: "Kernel", proc: Process) -> None:
    """Honour kill and suspend requests; the only place a process stops between calls."""
    while True:
        if proc.kill_requested:
            raise ProcessKilled(f"pid {proc.pid} killed")
        if proc.suspend_requested or kernel.preempt_wanted(proc):
            await kernel.park(proc)
            continue
        return


async def dispatch(kernel: "Kernel", pid: int, call: str, raw_args: Any) -> SyscallResult:
    try:
        proc = kernel.procs.get(pid)
    except NoSuchProcess as exc:
        return SyscallResult(False, error=str(exc), decision="deny")
    if not proc.alive:
        return SyscallResult(False, error=f"pid {pid} has terminated", decision="deny")
    started = time.monotonic()
    ctx = CallContext(kernel, proc, call)
    audit_args: dict[str, Any] = raw_args if isinstance(raw_args, dict) else {"raw": raw_args}
    result: SyscallResult
    try:
        if call != "exit":
            await boundary(kernel, proc)
        spec = TABLE.get(call)
        if spec is None:
            raise Refused(f"unknown syscall {call!r}; known: {', '.join(sorted(TABLE))}")
        if not isinstance(raw_args, dict):
            raise Refused(f"{call}: arguments must be a JSON object")
        try:
            args = spec.args.model_validate(raw_args)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}"
                                 for e in exc.errors())
            raise Refused(f"{call}: bad arguments: {problems}") from None
        value = await spec.handler(ctx, args)
        result = SyscallResult(True, value, decision=ctx.decision)
    except Refused as exc:
        result = SyscallResult(False, error=str(exc), decision=exc.decision)
    except (ProcessKilled, asyncio.CancelledError) as exc:
        _audit(kernel, proc, call, ctx.audit_args or audit_args, "killed",
               f"interrupted: {exc.__class__.__name__}", started)
        raise
    except toolcalls.ToolError as exc:
        result = SyscallResult(False, error=str(exc), decision=ctx.decision)
    except ModelError as exc:
        result = SyscallResult(False, error=str(exc), decision=ctx.decision)
    except Exception as exc:  # a handler bug must not take the kernel down
        log.exception("syscall %s of pid %d failed", call, pid)
        result = SyscallResult(False, error=f"{call} failed inside the kernel: {exc}",
                               decision="error")
    summary = (ctx.audit_result or result.text()) if result.ok else f"error: {result.error}"
    _audit(kernel, proc, call, ctx.audit_args or audit_args, result.decision, summary, started)
    return result


def _audit(kernel: "Kernel", proc: Process, call: str, args: dict[str, Any], decision: str,
           summary: str, started: float) -> None:
    kernel.audit.record(agent=proc.agent, pid=proc.pid, call=call, args=args, decision=decision,
                        result=summary[:2000], duration_ms=(time.monotonic() - started) * 1000)
