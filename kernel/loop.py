"""The generic agent loop: one loop runs every agent spec.

Model turn -> tool calls (each a syscall) -> results fed back, until the model ends its
turn or the step limit is hit. The loop itself holds no authority: it only makes syscalls.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from kernel import syscalls
from kernel.errors import ProcessKilled
from kernel.proc import Process, State
from kernel.specs import AgentSpec

if TYPE_CHECKING:
    from kernel.core import Kernel

log = logging.getLogger(__name__)


def final_text(content: list[dict[str, Any]]) -> str:
    return "\n".join(b.get("text", "") for b in content if b.get("type") == "text").strip()


async def run_agent(kernel: "Kernel", proc: Process, spec: AgentSpec) -> None:
    pid = proc.pid
    proc.conversation = [{"role": "user", "content": proc.input or "Begin."}]
    messages = proc.conversation
    tools = kernel.tool_definitions()
    try:
        kernel.procs.transition(proc, State.RUNNING)
        for _ in range(spec.max_steps):
            res = await kernel.syscall(pid, "llm", {"system": spec.instructions,
                                                    "messages": messages, "tools": tools})
            if not res.ok:
                await _exit(kernel, proc, "error", f"The model call failed: {res.error}")
                return
            message = res.value
            content = message["content"]
            messages.append({"role": "assistant", "content": content})
            kernel.procs.record_step(proc)
            text = final_text(content)
            if text:
                kernel.bus.publish({"type": "proc.text", "pid": pid, "agent": proc.agent,
                                    "text": text})
            tool_uses = [b for b in content if b.get("type") == "tool_use"]
            if not tool_uses:
                status = "ok" if message.get("stop_reason") != "max_tokens" else "truncated"
                await _exit(kernel, proc, status, text)
                return
            results = []
            for block in tool_uses:
                results.append(await _run_tool(kernel, pid, block))
            messages.append({"role": "user", "content": results})
        await _exit(kernel, proc, "max_steps",
                    f"Stopped after {spec.max_steps} steps without finishing.")
    except (ProcessKilled, asyncio.CancelledError):
        kernel.finish(proc, "killed", None)
    except Exception as exc:  # the loop must never take the kernel down
        log.exception("agent loop of pid %d failed", pid)
        kernel.finish(proc, "error", f"internal error: {exc}")


async def _run_tool(kernel: "Kernel", pid: int, block: dict[str, Any]) -> dict[str, Any]:
    name = block.get("name", "")
    raw = block.get("input")
    visible = syscalls.TABLE.get(name)
    if visible is not None and visible.model_visible:
        res = await kernel.syscall(pid, name, raw if isinstance(raw, dict) else {"raw": raw})
    else:
        res = await kernel.syscall(pid, "tool", {"name": name, "input": raw}
                                   if isinstance(raw, dict) else {"name": name, "input": {"raw": raw}})
    return {"type": "tool_result", "tool_use_id": block.get("id", ""),
            "content": res.text(), "is_error": not res.ok}


async def _exit(kernel: "Kernel", proc: Process, status: str, answer: str) -> None:
    res = await kernel.syscall(proc.pid, "exit", {"status": status, "answer": answer})
    if not res.ok:  # exit cannot be refused; make sure the process ends regardless
        kernel.finish(proc, status, answer)
