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
    temperature: float | None = Field(default=None, ge=0, le=1)


async def sys_llm(ctx: "CallContext", args: LlmArgs) -> dict[str, Any]:
    kernel, proc = ctx.kernel, ctx.proc
    spec = kernel.specs.get(proc.agent)
    model = args.model or spec.model or kernel.config.model
    max_tokens = args.max_tokens or spec.max_tokens
    ctx.audit_args = {"model": model, "messages": len(args.messages), "tools": len(args.tools),
                      "max_tokens": max_tokens}
    request: dict[str, Any] = {"model": model, "max_tokens": max_tokens,
                               "messages": args.messages}
    if args.system:
        request["system"] = args.system
    if args.tools:
        request["tools"] = args.tools
    if args.temperature is not None:
        request["temperature"] = args.temperature
    message = await kernel.inference.call(proc, spec, request)
    tools_used = [b.get("name") for b in message.get("content", []) if b.get("type") == "tool_use"]
    ctx.audit_result = (f"stop_reason={message.get('stop_reason')} usage={message.get('usage')}"
                        + (f" tool_use={tools_used}" if tools_used else ""))
    return message
