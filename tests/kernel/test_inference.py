"""Model calls through the scheduler against the fake Messages API, in process."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kernel.promptcache import PromptCacheModel
from kernel.specs import parse_spec
from tests.fakes.messages_api import FakeMessagesAPI
from tests.fakes.prompt_cache import estimate_tokens
from tests.fakes.replies import rate_limited, text, tool_use
from tests.kernel.support import make_kernel, run, until


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    with FakeMessagesAPI() as srv:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.base_url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-unit-test")
        monkeypatch.setenv("HOME", str(tmp_path / "user"))
        yield srv


def _add(kernel: Any, toml: str) -> None:
    kernel.specs.add(toml)
    spec = parse_spec(toml)
    kernel.grants.seed(spec.name, [(g.capability, g.mode) for g in spec.grants])


def test_the_estimate_of_a_first_call_never_undercounts_the_provider(
        server: FakeMessagesAPI, tmp_path: Path) -> None:
    k = make_kernel(tmp_path)
    model = PromptCacheModel(lambda: 0.0)
    from kernel.llm import with_cache_breakpoints
    for text_ in ("short", "x" * 5000, "ünïcödé " * 300, '{"json": [1, 2, 3]}' * 200):
        req = with_cache_breakpoints({"model": "m", "max_tokens": 5, "system": "s",
                                      "tools": k.tool_definitions(),
                                      "messages": [{"role": "user", "content": text_}]})
        assert model.estimate(req) >= estimate_tokens(req)


def test_each_step_of_a_multi_step_agent_pays_only_for_what_is_new(server: FakeMessagesAPI,
                                                                   tmp_path: Path) -> None:
    server.script(*[tool_use("memory_write", {"key": f"k{i}", "value": "v" * 50})
                    for i in range(3)], text("done"))

    async def go() -> None:
        k = make_kernel(tmp_path)
        proc = k.start_agent("assistant", "remember things")
        await until(lambda: not proc.alive, timeout=30)
        assert proc.exit_status == "ok"

    run(go)
    usage = server.usage_log
    assert len(usage) == 4
    assert usage[0].cache_read_input_tokens == 0 and usage[0].cache_creation_input_tokens > 1000  # tools + system written
    for later in usage[1:]:
        assert later.cache_read_input_tokens >= usage[0].cache_creation_input_tokens  # the prefix is read, not re-sent
        assert later.input_tokens < 200  # only the new turn is uncached


def test_identical_deterministic_requests_are_answered_from_the_response_cache(
        server: FakeMessagesAPI, tmp_path: Path) -> None:
    server.script(text("42"))

    async def go() -> None:
        k = make_kernel(tmp_path)
        _add(k, 'name = "calc"\ninstructions = "Answer."\ndeterministic = true\n')
        first = k.start_agent("calc", "6*7?")
        await until(lambda: not first.alive)
        second = k.start_agent("calc", "6*7?")
        await until(lambda: not second.alive)
        assert [e["answer"] for e in (k.bus.history(first.pid)[-1], k.bus.history(second.pid)[-1])] \
            == ["42", "42"]
        assert k.inference.report()["response_cache_hits"] == 1

    run(go)
    assert len(server.requests) == 1


def test_a_429_pauses_every_agent_once_instead_of_each_retrying(server: FakeMessagesAPI,
                                                                tmp_path: Path) -> None:
    server.script(rate_limited(retry_after=1.0), *[text("ok")] * 4)

    async def go() -> None:
        k = make_kernel(tmp_path)
        procs = [k.start_agent("assistant", "job 0")]
        await until(lambda: k.inference.scheduler.paused_for() > 0)
        procs += [k.start_agent("assistant", f"job {i}") for i in range(1, 4)]
        await until(lambda: all(not p.alive for p in procs), timeout=30)
        assert [p.exit_status for p in procs] == ["ok"] * 4
        assert k.inference.scheduler.report()["rate_limited"] == 1

    run(go)
    assert server.count_429 == 1
    times = [r.wall_time for r in server.requests]
    # After the 429 nobody went to the provider until its retry-after had passed.
    assert min(times[1:]) - times[0] >= 0.95
