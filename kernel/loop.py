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
    """Run (or, after a restore, continue) a process to its end.

    Checkpoints are written after every model turn and every tool result, so a restored
    conversation knows which tool calls of the last turn ran (`proc.turn_results`).
    """
    pid = proc.pid
    if not proc.conversation:
        proc.conversation = [{"role": "user", "content": proc.input or "Begin."}]
    messages = proc.conversation
    tools = kernel.tool_definitions()
    try:
        kernel.procs.transition(proc, State.RUNNING)
        while True:
            last = messages[-1]
            if last["role"] == "assistant":
                tool_uses = [b for b in last["content"] if b.get("type") == "tool_use"]
                if not tool_uses:  # only after a restore: the turn was final
                    await _exit(kernel, proc, "ok", final_text(last["content"]))
                    return
                messages.append({"role": "user",
                                 "content": await _run_turn_tools(kernel, proc, tool_uses)})
                kernel.checkpoint(proc)
            if proc.steps >= spec.max_steps:
                await _exit(kernel, proc, "max_steps",
                            f"Stopped after {spec.max_steps} steps without finishing.")
                return
            res = await kernel.syscall(pid, "llm", {"system": spec.instructions,
                                                    "messages": messages, "tools": tools})
            if not res.ok:
                await _exit(kernel, proc, "error", f"The model call failed: {res.error}")
                return
            message = res.value
            content = message["content"]
            messages.append({"role": "assistant", "content": content})
            kernel.procs.record_step(proc)
            kernel.checkpoint(proc)
            text = final_text(content)
            if text:
                kernel.bus.publish({"type": "proc.text", "pid": pid, "agent": proc.agent,
                                    "text": text})
            if not any(b.get("type") == "tool_use" for b in content):
                status = "ok" if message.get("stop_reason") != "max_tokens" else "truncated"
                await _exit(kernel, proc, status, text)
                return
    except asyncio.CancelledError:
        if kernel.closing and not proc.kill_requested:
            kernel.checkpoint(proc)  # the kernel stops under it; it continues after restart
            raise
        kernel.finish(proc, "killed", None)
    except ProcessKilled:
        kernel.finish(proc, "killed", None)
    except Exception as exc:  # the loop must never take the kernel down
        log.exception("agent loop of pid %d failed", pid)
        kernel.finish(proc, "error", f"internal error: {exc}")


async def _run_turn_tools(kernel: "Kernel", proc: Process,
                          tool_uses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results for a turn's tool calls, in order; calls that already have a result (from
    before a restart) are not run again."""
    for block in tool_uses:
        tid = block.get("id", "")
        if tid in proc.turn_results:
            continue
        proc.in_flight = tid
        proc.turn_results[tid] = await _run_tool(kernel, proc.pid, block)
        proc.in_flight = None
        kernel.checkpoint(proc)
    results = [proc.turn_results[b.get("id", "")] for b in tool_uses]
    proc.turn_results = {}
    return results


def interrupted_result(tool_use_id: str) -> dict[str, Any]:
    """What the model is told about a call the kernel stopped under: it is not run again,
    since that could repeat an action."""
    return {"type": "tool_result", "tool_use_id": tool_use_id, "is_error": True,
            "content": "interrupted by a kernel restart: it may or may not have taken effect;"
                       " check before trying again"}


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
