"""The `tool` syscall: a driver operation behind the capability check.

Order matters and is the security argument: arguments are validated, Path arguments are
resolved once (`~`, `..`, symlinks) *now*, every capability the operation needs is decided
on those resolved paths, and the operation receives exactly those paths. Nothing touches
the host before every decision is allow (or a person approved).
"""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from kernel.capabilities import Mode, resolve_path
from kernel.drivers import Need, ToolError
from kernel.errors import Refused
from kernel.proc import WaitReason

if TYPE_CHECKING:
    from kernel.syscalls import CallContext

__all__ = ["ToolArgs", "ToolError", "sys_tool"]

MAX_RESULT_CHARS = 50_000


class ToolArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    input: dict[str, Any] = {}


MAX_SUBTREE_ENTRIES = 20_000
_STRENGTH = {Mode.ALLOW: 0, Mode.ASK: 1, Mode.DENY: 2}


async def _decide(kernel: Any, agent: str, need: Need, default: Mode) -> tuple[Mode, str | None]:
    """The decision for one need. A subtree need on a folder is the strictest decision over
    the folder and everything in it, so a deny rule deep inside is never bypassed by an
    operation on a parent."""
    mode, rule = kernel.grants.check(agent, need.name, need.scope, need.is_path, default)
    if not need.subtree or mode is Mode.DENY or need.scope is None:
        return mode, rule
    root = Path(need.scope)
    if root.is_symlink() or not root.is_dir():
        return mode, rule
    try:
        descendants = await asyncio.to_thread(_descendants, root)
    except _TooMany:
        return Mode.DENY, f"(more than {MAX_SUBTREE_ENTRIES} entries below {root})"
    for path in descendants:
        m, r = kernel.grants.check(agent, need.name, str(path), True, default)
        if _STRENGTH[m] > _STRENGTH[mode]:
            mode, rule = m, r or f"(default for {path})"
            if mode is Mode.DENY:
                break
    return mode, rule


class _TooMany(Exception):
    pass


def _descendants(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            out.append(Path(dirpath) / name)
        if len(out) > MAX_SUBTREE_ENTRIES:
            raise _TooMany
    return out


async def sys_tool(ctx: "CallContext", args: ToolArgs) -> Any:
    kernel, proc = ctx.kernel, ctx.proc
    op = kernel.drivers.get(args.name)
    if op is None:
        raise Refused(f"unknown tool {args.name!r}", decision="invalid")
    ctx.audit_args = {"tool": args.name, "input": args.input}
    try:
        parsed = op.parse_args(args.input)
    except ToolError as exc:
        raise Refused(str(exc), decision="invalid") from None
    for pname in op.path_params:
        if parsed.get(pname) is not None:
            parsed[pname] = resolve_path(parsed[pname])
    needs = op.required_capabilities(parsed)
    ctx.audit_args["capabilities"] = [n.text() for n in needs]

    spec = kernel.specs.get(proc.agent)
    to_ask: list[str] = []
    for need in needs:
        cap = need.text()
        mode, rule = await _decide(kernel, proc.agent, need, spec.default)
        if mode is Mode.DENY:
            why = f"rule {rule} denies it" if rule else "no grant allows it"
            raise Refused(f"permission denied: {proc.agent} may not use {cap} ({why}). "
                          f"A person can allow it with: deskpilot grants allow {proc.agent} {cap}")
        if mode is Mode.ASK:
            to_ask.append(cap)
    if to_ask:
        detail = f"{args.name} {json.dumps(args.input, ensure_ascii=False)[:500]}"
        approved = await kernel.request_approval(proc, " + ".join(to_ask), detail)
        if not approved:
            ctx.decision = "deny (not approved)"
            raise Refused(f"permission denied: the person did not approve {' + '.join(to_ask)}",
                          decision=ctx.decision)
        ctx.decision = "allow (approved)"

    limit = spec.quotas.tool_calls_per_minute
    while (delay := kernel.tool_quota.wait_time(proc.agent, limit)) > 0:
        async with kernel.waiting(proc, WaitReason.BUDGET, "tool calls per minute"):
            await asyncio.sleep(delay)
    kernel.tool_quota.record(proc.agent)
    kernel.bus.publish({"type": "proc.tool", "pid": proc.pid, "agent": proc.agent,
                        "tool": args.name, "args": args.input})
    try:
        value = await asyncio.to_thread(op.func, **parsed)
    except ToolError as exc:
        kernel.bus.publish({"type": "proc.tool_result", "pid": proc.pid, "tool": args.name,
                            "ok": False, "text": str(exc)})
        raise
    except OSError as exc:
        # A host failure the driver did not translate: still the model's to read.
        message = f"{args.name}: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        kernel.bus.publish({"type": "proc.tool_result", "pid": proc.pid, "tool": args.name,
                            "ok": False, "text": message})
        raise ToolError(message) from None
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"\n...(truncated {len(text) - MAX_RESULT_CHARS} chars)"
    kernel.bus.publish({"type": "proc.tool_result", "pid": proc.pid, "tool": args.name,
                        "ok": True, "text": text[:500]})
    return text
