"""The `llm` syscall: one model call on behalf of a process.

Invariant: this is the only path to the provider. Agents, drivers and memory
consolidation all come through here, and so through the scheduler (kernel.inference).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from kernel.syscalls import CallContext


class LlmArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(default=None, max_length=200)
    system: str | list[dict[str, Any]] = ""
    messages: list[dict[str, Any]] = Field(min_length=1)
    tools: list[dict[str, Any]] = []
    max_tokens: int | None = Field(default=None, gt=0, le=128_000)


EPHEMERAL = {"type": "ephemeral"}


def _default_model(config: Any, priority: str) -> str:
    if priority in ("background", "idle") and config.background_model:
        return str(config.background_model)
    return str(config.model)


def with_cache_breakpoints(request: dict[str, Any]) -> dict[str, Any]:
    """Mark the stable prefix (tools, system prompt) and the end of the growing
    conversation for prompt caching, so each step pays only for what is new: the
    previous step's breakpoint is found again by the provider's lookback.
    Three breakpoints of the four allowed; the caller's objects are not modified."""
    out = {k: v for k, v in request.items() if v not in ("", [], None)}
    if out.get("tools"):
        tools = list(out["tools"])
        tools[-1] = {**tools[-1], "cache_control": EPHEMERAL}
        out["tools"] = tools
    system = out.get("system")
    if isinstance(system, str):
        out["system"] = [{"type": "text", "text": system, "cache_control": EPHEMERAL}]
    elif isinstance(system, list) and system:
        out["system"] = [*system[:-1], {**system[-1], "cache_control": EPHEMERAL}]
    messages = list(out["messages"])
    last = messages[-1]
    content = last.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if isinstance(content, list) and content and isinstance(content[-1], dict):
        content = [*content[:-1], {**content[-1], "cache_control": EPHEMERAL}]
        messages[-1] = {**last, "content": content}
    out["messages"] = messages
    return out


async def sys_llm(ctx: "CallContext", args: LlmArgs) -> dict[str, Any]:
    kernel, proc = ctx.kernel, ctx.proc
    spec = kernel.specs.get(proc.agent)
    model = args.model or spec.model or _default_model(kernel.config, spec.priority)
    max_tokens = args.max_tokens or spec.max_tokens
    ctx.audit_args = {"model": model, "messages": len(args.messages), "tools": len(args.tools),
                      "max_tokens": max_tokens}
    request = with_cache_breakpoints({"model": model, "max_tokens": max_tokens,
                                      "messages": args.messages, "system": args.system,
                                      "tools": args.tools})
    message = await kernel.inference.call(proc, spec, request)
    tools_used = [b.get("name") for b in message.get("content", []) if b.get("type") == "tool_use"]
    ctx.audit_result = (f"stop_reason={message.get('stop_reason')} usage={message.get('usage')}"
                        + (f" tool_use={tools_used}" if tools_used else ""))
    return message
