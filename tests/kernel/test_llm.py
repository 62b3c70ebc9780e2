"""The llm syscall's request: prompt-cache breakpoints and model choice."""
from __future__ import annotations

import copy

from kernel.config import Config
from kernel.llm import EPHEMERAL, _default_model, with_cache_breakpoints


def _request() -> dict:
    return {"model": "m", "max_tokens": 10, "system": "be brief",
            "tools": [{"name": "a", "input_schema": {}}, {"name": "b", "input_schema": {}}],
            "messages": [{"role": "user", "content": "hi"},
                         {"role": "assistant", "content": [{"type": "text", "text": "yo"}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x",
                                                       "content": "ok"}]}]}


def test_breakpoints_mark_tools_system_and_the_end_of_the_conversation() -> None:
    req = _request()
    before = copy.deepcopy(req)
    out = with_cache_breakpoints(req)
    assert req == before  # the caller's conversation is never modified
    assert out["tools"][-1]["cache_control"] == EPHEMERAL
    assert "cache_control" not in out["tools"][0]
    assert out["system"] == [{"type": "text", "text": "be brief", "cache_control": EPHEMERAL}]
    assert out["messages"][-1]["content"][-1]["cache_control"] == EPHEMERAL
    assert out["messages"][:-1] == req["messages"][:-1]
    marks = str(out).count("cache_control")
    assert marks == 3  # of the four the API allows


def test_a_plain_string_message_becomes_a_marked_text_block() -> None:
    out = with_cache_breakpoints({"model": "m", "max_tokens": 1, "system": "",
                                  "tools": [], "messages": [{"role": "user", "content": "hi"}]})
    assert "system" not in out and "tools" not in out
    assert out["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "hi", "cache_control": EPHEMERAL}]}]


def test_background_agents_get_the_cheaper_model_when_configured() -> None:
    cfg = Config(model="big", background_model="small")
    assert _default_model(cfg, "background") == "small"
    assert _default_model(cfg, "idle") == "small"
    assert _default_model(cfg, "interactive") == "big"
    assert _default_model(Config(model="big"), "background") == "big"
