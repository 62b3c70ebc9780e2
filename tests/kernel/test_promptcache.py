"""The kernel's prompt-cache model against the fake provider's cache emulation."""
from __future__ import annotations

import json
from typing import Any

from kernel.llm import with_cache_breakpoints
from kernel.promptcache import INITIAL_RATIO, SAFETY, TTL, PromptCacheModel, prefixes
from tests.fakes.prompt_cache import PromptCache, segments

TOOLS = [{"name": f"tool_{i}", "description": "does a thing " * 40,
          "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}}
         for i in range(6)]
SYSTEM = "You are a careful agent. " * 120


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def request(messages: list[dict[str, Any]], system: str = SYSTEM) -> dict[str, Any]:
    return with_cache_breakpoints({"model": "claude-sonnet-4-5", "max_tokens": 100,
                                   "system": system, "tools": TOOLS, "messages": messages})


def send(model: PromptCacheModel, provider: PromptCache, req: dict[str, Any]) -> tuple[int, int]:
    """(estimate, what the provider counted) of one call; the model observes its usage."""
    estimate = model.estimate(req)
    plan = provider.plan(req["model"], segments(req))
    provider.commit(plan)
    model.observe(req, input_tokens=plan.input_tokens,
                  cache_creation_input_tokens=plan.cache_creation_input_tokens,
                  cache_read_input_tokens=plan.cache_read_input_tokens)
    return estimate, plan.rate_limited_input_tokens


def conversation(agent: int, task: int, clock: Clock, model: PromptCacheModel,
                 provider: PromptCache, steps: int = 4) -> list[tuple[int, int]]:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": f"agent {agent} task {task}: " + "ticket text " * 200}]
    out = []
    for step in range(steps):
        out.append(send(model, provider, request(messages)))
        clock.t += 3.0
        messages.append({"role": "assistant", "content": [
            {"type": "tool_use", "id": f"t{agent}-{task}-{step}", "name": "tool_1",
             "input": {"x": "value " * 20}}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"t{agent}-{task}-{step}",
             "content": json.dumps({"ok": True, "step": step})}]})
    return out


def test_prefixes_ignore_cache_control_and_string_forms() -> None:
    plain = {"model": "m", "system": "s", "messages": [{"role": "user", "content": "hi"}]}
    marked = with_cache_breakpoints(plain)
    a, b = prefixes(plain), prefixes(marked)
    assert a.keys == b.keys and a.chars == b.chars
    assert a.breakpoints == () and len(b.breakpoints) == 2


def test_estimates_never_undercount_and_track_the_counted_input_closely() -> None:
    clock = Clock()
    model, provider = PromptCacheModel(clock), PromptCache(clock)
    calls = [c for agent in range(3) for task in range(2)
             for c in conversation(agent, task, clock, model, provider)]
    assert all(est >= counted for est, counted in calls), calls
    warm = calls[4:]   # after the first task: the ratio is learned, the prefix cached
    estimated, counted = sum(e for e, _ in warm), sum(c for _, c in warm)
    assert estimated <= counted * 1.10, (estimated, counted)
    # Tools and system prompt alone outweigh a later step's estimate: reads are not reserved.
    shared_prefix = sum(s.tokens for s in segments(request([{"role": "user", "content": "x"}])))
    assert max(e for e, _ in warm[1:]) < shared_prefix


def test_a_cold_model_reserves_the_whole_prompt_at_a_high_ratio() -> None:
    model = PromptCacheModel(Clock())
    req = request([{"role": "user", "content": "hello"}])
    p = prefixes(req)
    assert model.estimate(req) >= p.total_chars * INITIAL_RATIO


def test_a_prefix_is_not_trusted_near_its_expiry() -> None:
    clock = Clock()
    model, provider = PromptCacheModel(clock), PromptCache(clock)
    conversation(0, 0, clock, model, provider, steps=1)
    fresh = model.estimate(request([{"role": "user", "content": "new task " * 50}]))
    clock.t += TTL - SAFETY + 1
    stale = model.estimate(request([{"role": "user", "content": "new task " * 50}]))
    assert stale > fresh * 3   # tools + system prompt are reserved again


def test_a_prefix_the_provider_did_not_confirm_is_not_assumed_cached() -> None:
    clock = Clock()
    model = PromptCacheModel(clock)
    req = request([{"role": "user", "content": "first"}])
    before = model.estimate(req)
    # The provider read nothing and wrote nothing (e.g. a prefix below its minimum).
    model.observe(req, input_tokens=900, cache_creation_input_tokens=0,
                  cache_read_input_tokens=0)
    after = model.estimate(request([{"role": "user", "content": "second"}]))
    assert after > 800 and before >= after


def test_the_ratio_is_learned_per_model_and_errs_high() -> None:
    model = PromptCacheModel(Clock())
    req = request([{"role": "user", "content": "x"}])
    chars = prefixes(req).total_chars
    model.observe(req, input_tokens=chars // 4, cache_creation_input_tokens=0,
                  cache_read_input_tokens=0)
    model.observe(req, input_tokens=chars // 5, cache_creation_input_tokens=0,
                  cache_read_input_tokens=0)
    assert abs(model.ratio("claude-sonnet-4-5") - (chars // 4) / chars) < 1e-9
    assert model.ratio("another-model") == INITIAL_RATIO


def test_the_model_stays_bounded(monkeypatch) -> None:
    import kernel.promptcache as pc
    monkeypatch.setattr(pc, "MAX_ENTRIES", 10)
    clock = Clock()
    model, provider = PromptCacheModel(clock), PromptCache(clock)
    for task in range(12):
        conversation(0, task, clock, model, provider, steps=1)
    assert len(model._expires) <= 10
