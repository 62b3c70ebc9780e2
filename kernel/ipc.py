"""Syscalls between agents and for their own state: memory namespaces, mailboxes,
spawn and sleep.

Memory namespaces: an agent may always use its own, `agent/<name>`; any other namespace
needs `memory.read:<ns>` / `memory.write:<ns>`.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from kernel.capabilities import Mode
from kernel.errors import Refused
from kernel.proc import WaitReason

if TYPE_CHECKING:
    from kernel.syscalls import CallContext

NAMESPACE = r"^[a-z0-9_\-]+(/[a-z0-9_\-]+)*$"


class MemoryReadArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    namespace: str | None = Field(default=None, pattern=NAMESPACE,
                                  description="Namespace; default your own (agent/<name>)")
    key: str | None = Field(default=None, max_length=200,
                            description="Key to read; omit to list the keys")


class MemoryWriteArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    namespace: str | None = Field(default=None, pattern=NAMESPACE,
                                  description="Namespace; default your own (agent/<name>)")
    key: str = Field(min_length=1, max_length=200)
    value: str = Field(max_length=100_000)


class SendArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(min_length=1, description="Agent name or pid")
    text: str = Field(max_length=100_000)


class RecvArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout: float = Field(default=0.0, ge=0, le=3600,
                           description="Seconds to wait for a first message; 0 returns at once")
    max: int = Field(default=10, ge=1, le=100)


class SpawnArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: str = Field(pattern=r"^[a-z0-9-]+$")
    input: str = Field(default="", max_length=100_000)


class SleepArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(gt=0, le=3600)


def _check(ctx: "CallContext", name: str, scope: str) -> None:
    kernel, proc = ctx.kernel, ctx.proc
    mode, rule = kernel.grants.check(proc.agent, name, scope, False, Mode.DENY)
    if mode is not Mode.ALLOW:
        ctx.decision = "deny"
        raise Refused(f"permission denied: {proc.agent} may not use {name}:{scope}"
                      f" ({'rule ' + rule if rule else 'no grant allows it'})")


def _namespace(ctx: "CallContext", ns: str | None, verb: str) -> str:
    own = f"agent/{ctx.proc.agent}"
    if ns is None or ns == own:
        return own
    _check(ctx, f"memory.{verb}", ns)
    return ns


async def sys_memory_read(ctx: "CallContext", args: MemoryReadArgs) -> Any:
    ns = _namespace(ctx, args.namespace, "read")
    db = ctx.kernel.db
    if args.key is None:
        return [r["key"] for r in db.query("SELECT key FROM memory WHERE namespace=? ORDER BY key",
                                           (ns,))]
    row = db.one("SELECT value FROM memory WHERE namespace=? AND key=?", (ns, args.key))
    if row is None:
        raise Refused(f"no key {args.key!r} in {ns}", decision="allow")
    return row["value"]


async def sys_memory_write(ctx: "CallContext", args: MemoryWriteArgs) -> Any:
    ns = _namespace(ctx, args.namespace, "write")
    ctx.kernel.db.execute(
        "INSERT INTO memory (namespace, key, value, updated) VALUES (?,?,?,?)"
        " ON CONFLICT(namespace, key) DO UPDATE SET value=excluded.value, updated=excluded.updated",
        (ns, args.key, args.value, time.time()))
    return {"namespace": ns, "key": args.key, "stored": len(args.value)}


async def sys_send(ctx: "CallContext", args: SendArgs) -> Any:
    delivered = ctx.kernel.deliver(args.to, {"from": ctx.proc.agent, "from_pid": ctx.proc.pid,
                                             "text": args.text})
    return {"delivered_to": delivered}


async def sys_recv(ctx: "CallContext", args: RecvArgs) -> Any:
    proc = ctx.proc
    messages: list[dict[str, Any]] = []
    if proc.mailbox.empty() and args.timeout > 0:
        async with ctx.kernel.waiting(proc, WaitReason.MESSAGE):
            try:
                messages.append(await asyncio.wait_for(proc.mailbox.get(), args.timeout))
            except asyncio.TimeoutError:
                pass
    while not proc.mailbox.empty() and len(messages) < args.max:
        messages.append(proc.mailbox.get_nowait())
    return messages


async def sys_spawn(ctx: "CallContext", args: SpawnArgs) -> Any:
    _check(ctx, "agents.spawn", args.agent)
    child = ctx.kernel.start_agent(args.agent, args.input, parent=ctx.proc.pid)
    return {"pid": child.pid, "agent": args.agent}


async def sys_sleep(ctx: "CallContext", args: SleepArgs) -> Any:
    async with ctx.kernel.waiting(ctx.proc, WaitReason.SLEEP):
        await asyncio.sleep(args.seconds)
    return {"slept": args.seconds}
