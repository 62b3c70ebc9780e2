"""Arm (b): every agent calls the provider itself, with the anthropic SDK's default retries.

This is what a team does without an agent OS: one ``AsyncAnthropic`` client per agent
(default ``max_retries=2``, which honours ``retry-after``), the same tools, system prompt
and messages as the kernel sends, tool calls run locally, and a task that still gets an
error after the SDK's retries is failed; the agent goes on with its next task.

``cache=False`` (arm ``direct``): plain requests, as such code is usually written --
prompt caching is opt-in.  ``cache=True`` (arm ``direct_cached``): the kernel's own
``cache_control`` breakpoints too, so only the scheduling differs from the kernel arm.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from typing import Any

import anthropic

from bench.metrics import ArmResult
from bench.provider import BenchProvider
from bench.workload import MAX_STEPS, agent_name, build_request, task_input, tool_definitions

log = logging.getLogger("bench.direct")
API_KEY = "sk-ant-bench-direct-0000"


def _tool_result(agent: str, block: dict[str, Any]) -> dict[str, Any]:
    """What the kernel's memory_write answers, run locally."""
    args = block.get("input") or {}
    if block.get("name") == "memory_write":
        content = json.dumps({"namespace": f"agent/{agent}", "key": args.get("key"),
                              "stored": len(str(args.get("value", "")))})
        return {"type": "tool_result", "tool_use_id": block["id"], "content": content,
                "is_error": False}
    return {"type": "tool_result", "tool_use_id": block["id"], "is_error": True,
            "content": f"unknown tool {block.get('name')!r}"}


async def _task(client: anthropic.AsyncAnthropic, agent: str, task: int, ticket_chars: int,
                tools: list[dict[str, Any]], cache: bool) -> tuple[str, str | None]:
    messages: list[dict[str, Any]] = [{"role": "user",
                                       "content": task_input(agent, task, ticket_chars)}]
    for _ in range(MAX_STEPS):
        request = build_request(messages, tools, cache)
        try:
            async with client.messages.stream(**request) as stream:
                msg = await stream.get_final_message()
        except anthropic.APIStatusError as exc:
            return "failed", f"HTTP {exc.status_code} after the SDK's retries"
        except anthropic.APIError as exc:
            return "failed", type(exc).__name__
        content = [b.model_dump(mode="json", exclude_none=True) for b in msg.content]
        messages.append({"role": "assistant", "content": content})
        uses = [b for b in content if b.get("type") == "tool_use"]
        if not uses:
            return ("ok", None) if msg.stop_reason == "end_turn" else ("failed", msg.stop_reason)
        messages.append({"role": "user", "content": [_tool_result(agent, b) for b in uses]})
    return "failed", "max_steps"


async def _agent(base_url: str, agent: str, ticket_chars: int, tools: list[dict[str, Any]],
                 cache: bool, outcomes: dict[tuple[str, int], str],
                 failures: Counter[str]) -> None:
    """Task after task until cancelled; the task in progress then counts as unfinished."""
    async with anthropic.AsyncAnthropic(api_key=API_KEY, base_url=base_url) as client:
        k = 0
        while True:
            try:
                status, why = await _task(client, agent, k, ticket_chars, tools, cache)
            except asyncio.CancelledError:
                outcomes[(agent, k)] = "unfinished"
                raise
            outcomes[(agent, k)] = status
            if why:
                failures[why] += 1
            k += 1


async def _run(provider: BenchProvider, agents: list[str], ticket_chars: int, duration: float,
               cache: bool, outcomes: dict[tuple[str, int], str],
               failures: Counter[str]) -> None:
    tools = tool_definitions()
    jobs = [asyncio.create_task(_agent(provider.base_url, a, ticket_chars, tools, cache,
                                       outcomes, failures)) for a in agents]
    done, pending = await asyncio.wait(jobs, timeout=duration)
    for job in pending:
        job.cancel()
    if pending:
        await asyncio.wait(pending, timeout=10)
    for job in done:
        if job.exception() is not None:
            log.error("direct agent crashed: %r", job.exception())


def run_direct(n: int, *, duration: float, itpm: int, seconds_per_output_token: float,
               ticket_chars: int, retry_after: bool = True, cache: bool = False) -> ArmResult:
    agents = [agent_name(i) for i in range(n)]
    outcomes: dict[tuple[str, int], str] = {}
    failures: Counter[str] = Counter()
    with BenchProvider(itpm=itpm, seconds_per_output_token=seconds_per_output_token,
                       retry_after=retry_after) as provider:
        log.info("direct arm (cache_control: %s): %d agents for %.0f s against %s", cache, n,
                 duration, provider.base_url)
        started = time.monotonic()
        asyncio.run(_run(provider, agents, ticket_chars, duration, cache, outcomes, failures))
        ended = min(time.monotonic(), started + duration)
        records = provider.records()
        count_429 = provider.count_429
        max_input = provider.max_window_usage("input_tokens")
    refused = [r.t for r in records if not r.admitted]
    saturated = (min(r.t for r in records), max(refused)) if refused else None
    log.info("direct arm done: %d ok, %d failed, %d 429s", list(outcomes.values()).count("ok"),
             list(outcomes.values()).count("failed"), count_429)
    return ArmResult(arm="direct_cached" if cache else "direct", n=n, agents=agents, outcomes=outcomes,
                     started=started, ended=ended, saturated=saturated,
                     saturation_source="first request to last 429 drawn",
                     count_429=count_429, max_window_input=max_input, records=records,
                     failures=dict(failures), saturated_at=sorted(refused))
