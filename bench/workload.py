"""The benchmark's workload: one product's agents, all with the same instructions and tools.

Every task is a ticket-triage job of three model turns: two ``memory_write`` tool calls
(a summary, then the next actions) and a final text.  Each task's first user message
carries a unique ticket (so its input is not in the prompt cache) and a tag
``[task AGENT/K]`` by which the fake provider's :func:`responder` and the metrics know
whose call a request is.  The interactive probe asks one question and gets one text turn.

The direct arms send the same tools, system prompt and messages as the kernel.  Arm
``direct`` sends them as a team writes plain SDK calls, without ``cache_control``
(prompt caching is opt-in; the kernel adds the breakpoints itself); arm
``direct_cached`` adds exactly the kernel's breakpoints, so that it differs from the
kernel only in how the calls are scheduled.
"""
from __future__ import annotations

import json
import random
import re
import time
from typing import Any

from kernel import syscalls
from kernel.drivers import DriverRegistry, discover_drivers
from kernel.llm import with_cache_breakpoints
from tests.fakes.messages_api import Reply, message, text, tool_use
from tests.fakes.prompt_cache import PromptCache, segments

MODEL = "claude-sonnet-4-5"
MAX_TOKENS = 1024
MAX_STEPS = 6
AGENT_PREFIX = "bench-"
PROBE_AGENT = "bench-interactive"
TAG = re.compile(r"\[task (?P<agent>[a-z0-9-]+)/(?P<task>\d+)\]")

INSTRUCTIONS = """\
You are a ticket-triage agent of the Acme Helpdesk product. You run in the background on \
the support team's desktop and work through new customer tickets one at a time.

For every ticket you are given:
1. Read the whole ticket. Identify the customer, the product area (billing, sign-in, \
sync, mobile app, desktop app, integrations, data export) and the urgency (low, normal, \
high, critical). A ticket that mentions data loss, a security problem or a complete \
outage is always critical.
2. Store a short summary with the memory_write tool under the key summary-<ticket number>: \
one or two sentences, the product area and the urgency, no personal data beyond the \
customer's first name.
3. Store the next actions with the memory_write tool under the key actions-<ticket \
number>: at most three short imperative lines, for example "ask for the app version", \
"escalate to the sync team", "refund the duplicate charge".
4. Answer with a final short note for the support lead: the urgency, the area, and \
whether a person must look at the ticket today.

Rules:
- Never invent facts that the ticket does not state; if something is missing, say what \
to ask the customer.
- Never promise refunds, credits or dates; only propose them as next actions.
- Keep every stored value under 400 characters; the support team reads them on a phone.
- Use only your own memory namespace; do not touch files, other agents or settings.
- Do not call any tool other than memory_write for a ticket, and call it exactly twice.
- Write in plain English, without markdown headings or tables.
- If the ticket is not a support request (spam, an automatic reply, a newsletter), store \
the summary "not a support request", store the action "archive", and say so.
- If the customer writes in another language, summarise in English and note the language.
- Tickets from customers on the Enterprise plan are at least high urgency.
"""

_WORDS = ("account sync folder error invoice charge twice login password reset phone app "
          "desktop crash update version export data backup restore calendar contact team "
          "admin seat plan enterprise trial cancel refund slow timeout offline conflict "
          "duplicate missing file upload download share link permission integration token "
          "webhook report dashboard screen blank retry support week yesterday morning "
          "customer urgent deadline meeting migration windows macos android iphone").split()


def agent_name(i: int) -> str:
    return f"{AGENT_PREFIX}{i:02d}"


def spec_toml(name: str, priority: str = "background") -> str:
    return (f'name = "{name}"\ndescription = "Acme Helpdesk ticket triage (benchmark)"\n'
            f'instructions = """{INSTRUCTIONS}"""\npriority = "{priority}"\nweight = 1\n'
            f'max_steps = {MAX_STEPS}\nmax_tokens = {MAX_TOKENS}\n')


def task_input(agent: str, task: int, ticket_chars: int) -> str:
    """The first user message of a task: its tag and a unique ticket."""
    rng = random.Random(f"{agent}/{task}")
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < ticket_chars:
        words.append(rng.choice(_WORDS))
    body = " ".join(words)
    number = 10_000 + rng.randrange(90_000)
    return (f"[task {agent}/{task}] New ticket #{number} from a customer on the "
            f"{rng.choice(['Free', 'Team', 'Enterprise'])} plan:\n\n{body}\n\nTriage it.")


def probe_input(k: int) -> str:
    return (f"[task {PROBE_AGENT}/{k}] Which product area had the most critical tickets "
            "this morning? One sentence, please.")


def tag_of(body: dict[str, Any]) -> tuple[str, int] | None:
    """(agent, task) from a request's first user message, or None."""
    for msg in body.get("messages") or []:
        content = msg.get("content")
        texts = [content] if isinstance(content, str) else [
            b.get("text", "") for b in content or [] if isinstance(b, dict)]
        for t in texts:
            m = TAG.search(t or "")
            if m:
                return m["agent"], int(m["task"])
        break
    return None


def turn_of(body: dict[str, Any]) -> int:
    return sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")


def responder(body: dict[str, Any]) -> Reply:
    """The fake model: memory_write, memory_write, final text (the probe: one text)."""
    tag = tag_of(body) or ("unknown", 0)
    agent, task = tag
    if agent == PROBE_AGENT:
        return text("Sync had the most critical tickets this morning (3 of 5), "
                    "all about conflicted folders after the last desktop update.")
    turn = turn_of(body)
    if turn == 0:
        return message(text("Summarising the ticket."), tool_use("memory_write", {
            "key": f"summary-{agent}-{task}",
            "value": "Customer reports files missing after a desktop sync conflict; area sync, "
                     "urgency high (Team plan, data may be lost). Needs a person today."}))
    if turn == 1:
        return tool_use("memory_write", {
            "key": f"actions-{agent}-{task}",
            "value": "ask for the app version and OS\nescalate to the sync team\n"
                     "tell the customer how to restore from the web trash"})
    return text("High urgency, sync: files missing after a conflict, possible data loss. "
                "Summary and next actions stored; a person should reply today and escalate "
                "to the sync team.")


def tool_definitions() -> list[dict[str, Any]]:
    """The tools the kernel offers every agent (drivers + model-visible syscalls)."""
    return DriverRegistry(discover_drivers()).definitions() + syscalls.model_tools()


def build_request(messages: list[dict[str, Any]], tools: list[dict[str, Any]],
                  cache: bool = True) -> dict[str, Any]:
    """The request the kernel's `llm` syscall sends for these messages (``cache=False``:
    the same without the kernel's prompt-cache breakpoints)."""
    request = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": messages,
               "system": INSTRUCTIONS, "tools": tools}
    return with_cache_breakpoints(request) if cache else request


def counted_input_per_task(ticket_chars: int, tools: list[dict[str, Any]]) -> int:
    """Input tokens one task counts toward the provider's ITPM once the shared prefix
    (tools + system prompt) is cached: replays a task through the fake's prompt cache."""
    cache = PromptCache(time.monotonic)

    def run(agent: str, task: int) -> int:
        counted = 0
        messages: list[dict[str, Any]] = [{"role": "user",
                                           "content": task_input(agent, task, ticket_chars)}]
        for _ in range(MAX_STEPS):
            body = build_request(messages, tools)
            plan = cache.plan(MODEL, segments(body))
            cache.commit(plan)
            counted += plan.rate_limited_input_tokens
            reply = responder(body)
            content = [dict(b) for b in reply.content]  # type: ignore[union-attr]
            messages.append({"role": "assistant", "content": content})
            uses = [b for b in content if b["type"] == "tool_use"]
            if not uses:
                return counted
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": b["id"], "is_error": False,
                 "content": json.dumps({"namespace": f"agent/{agent}", "key": b["input"]["key"],
                                        "stored": len(b["input"]["value"])})} for b in uses]})
        return counted

    run("bench-warm", 0)
    return run("bench-00", 0)
