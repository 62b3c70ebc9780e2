"""The fake Messages API, exercised through the real ``anthropic`` SDK."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import anthropic
import pytest

from tests.fakes.messages_api import (
    NO_REPLY_MESSAGE,
    FakeMessagesAPI,
    broken_stream,
    delay,
    estimate_tokens,
    message,
    overloaded,
    rate_limited,
    server_error,
    text,
    tool_use,
)

MODEL = "claude-test"
ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def shared_server(clock: FakeClock) -> Iterator[FakeMessagesAPI]:
    # One server for the module (starting/stopping uvicorn costs ~0.15 s); reset per test.
    with FakeMessagesAPI(clock=clock) as s:
        yield s


@pytest.fixture
def server(shared_server: FakeMessagesAPI) -> FakeMessagesAPI:
    shared_server.reset()
    return shared_server


def client_for(server: FakeMessagesAPI, **kw: Any) -> anthropic.Anthropic:
    kw.setdefault("max_retries", 0)
    return anthropic.Anthropic(api_key="test-key", base_url=server.base_url, **kw)


@pytest.fixture
def client(server: FakeMessagesAPI) -> anthropic.Anthropic:
    return client_for(server)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


BIG_SYSTEM = "You are a careful desktop agent. " * 160  # ~5100 chars → well over 1024 tokens


def cached_system(s: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": s, "cache_control": {"type": "ephemeral"}}]


# ---------------------------------------------------------------- plain and streamed


def test_plain_text_reply_and_recording(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    server.script(text("Hello from the fake."))
    body = {"model": MODEL, "max_tokens": 64, "system": "be brief", "messages": [user("hi")]}
    msg = client.messages.create(**body)

    assert msg.type == "message" and msg.role == "assistant" and msg.model == MODEL
    assert msg.id.startswith("msg_")
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "Hello from the fake."
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.usage.input_tokens == estimate_tokens(body)
    assert msg.usage.output_tokens == 5  # ceil(20 chars / 4)
    assert msg.usage.cache_creation_input_tokens == 0 and msg.usage.cache_read_input_tokens == 0

    (req,) = server.requests
    assert req.path == "/v1/messages" and req.status == 200
    assert req.api_key == "test-key"
    assert req.body["system"] == "be brief" and req.body["messages"] == [user("hi")]
    assert "anthropic-version" in req.headers


def test_streamed_text(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    words = "one two three four five six seven eight nine ten"
    server.script(text(words))
    deltas: list[str] = []
    with client.messages.stream(model=MODEL, max_tokens=64, messages=[user("count")]) as stream:
        for event in stream:
            if event.type == "text":
                deltas.append(event.text)
        final = stream.get_final_message()
    assert len(deltas) > 1 and "".join(deltas) == words
    assert final.content[0].text == words
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == math.ceil(len(words) / 4)
    assert final.usage.input_tokens == estimate_tokens({"messages": [user("count")]})


def test_streamed_tool_use_input_is_parsed(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    args = {"path": "~/Downloads", "recursive": True, "patterns": ["*.png", "*.jpg"], "limit": 50}
    server.script(message(text("Let me look."), tool_use("list_files", args, id="toolu_abc")))
    tools = [{"name": "list_files", "description": "List files", "input_schema": {"type": "object"}}]
    json_chunks = 0
    with client.messages.stream(model=MODEL, max_tokens=256, tools=tools, messages=[user("what is there?")]) as s:
        for event in s:
            if event.type == "input_json":
                json_chunks += 1
        final = s.get_final_message()
    assert json_chunks >= 3  # the input arrived in several partial_json pieces
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use"]
    call = final.content[1]
    assert (call.id, call.name, call.input) == ("toolu_abc", "list_files", args)
    assert server.requests[0].body["tools"] == tools


def test_tool_result_is_recorded_and_missing_result_is_rejected(
    server: FakeMessagesAPI, client: anthropic.Anthropic
) -> None:
    server.script(tool_use("get_time", {}, id="toolu_1"), text("It is noon."))
    first = client.messages.create(model=MODEL, max_tokens=64, messages=[user("time?")])
    history = [user("time?"), {"role": "assistant", "content": [b.model_dump() for b in first.content]}]
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "12:00"}
    second = client.messages.create(model=MODEL, max_tokens=64, messages=[*history, user([result])])
    assert second.content[0].text == "It is noon."
    assert server.requests[1].body["messages"][-1]["content"] == [result]

    with pytest.raises(anthropic.BadRequestError, match="tool_use` ids were found without `tool_result`"):
        client.messages.create(model=MODEL, max_tokens=64, messages=[*history, user("never mind")])


def test_count_tokens_matches_usage(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    body = {
        "model": MODEL,
        "system": "You sort files.",
        "tools": [{"name": "move", "input_schema": {"type": "object", "properties": {"src": {"type": "string"}}}}],
        "messages": [user("tidy ~/Downloads please")],
    }
    counted = client.messages.count_tokens(**body).input_tokens
    assert counted == estimate_tokens(body) > 10
    server.script(text("ok"))
    assert client.messages.create(max_tokens=16, **body).usage.input_tokens == counted
    assert server.requests[0].path == "/v1/messages/count_tokens"


# ---------------------------------------------------------------- errors


def test_scripted_429_surfaces_retry_after(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    server.script(rate_limited(retry_after=2))
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])
    err = info.value
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "2"
    assert err.response.headers["request-id"].startswith("req_")
    assert err.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert server.count_429 == 1


def test_529_overloaded_and_500(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    server.script(overloaded(retry_after=3), server_error(500))
    with pytest.raises(anthropic.OverloadedError) as info:
        client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])
    assert info.value.status_code == 529 and info.value.response.headers["retry-after"] == "3"
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    with pytest.raises(anthropic.InternalServerError) as info500:
        client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])
    assert info500.value.status_code == 500


def test_empty_queue_is_a_clear_500(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.InternalServerError) as info:
        client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])
    assert NO_REPLY_MESSAGE in str(info.value)
    assert server.requests[0].status == 500


def test_sdk_retries_a_429_then_succeeds(server: FakeMessagesAPI) -> None:
    server.script(rate_limited(retry_after=0.05), text("after retry"))
    client = client_for(server, max_retries=2)
    assert client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")]).content[0].text == "after retry"
    assert [r.status for r in server.requests] == [429, 200]
    assert server.requests[1].headers["x-stainless-retry-count"] == "1"


def test_delay_triggers_client_timeout(server: FakeMessagesAPI) -> None:
    server.script(delay(0.5, text("too late")))
    client = client_for(server, timeout=0.1)
    with pytest.raises(anthropic.APITimeoutError):
        client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])


def test_broken_streams(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    server.script(broken_stream(after_events=4), broken_stream(after_events=3, error_type="overloaded_error"))
    # Dropped mid-body: the SDK's HTTP layer reports the incomplete chunked body.
    with pytest.raises(Exception, match="incomplete chunked read|peer closed connection"):
        with client.messages.stream(model=MODEL, max_tokens=64, messages=[user("hi")]) as s:
            s.get_final_message()
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        with client.messages.stream(model=MODEL, max_tokens=64, messages=[user("hi")]) as s:
            s.get_final_message()


def test_malformed_tool_input_is_passed_through(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    server.script(tool_use("move", {"nonsense": [1, {"x": None}]}))
    msg = client.messages.create(model=MODEL, max_tokens=64, messages=[user("go")])
    assert msg.content[0].input == {"nonsense": [1, {"x": None}]}  # type: ignore[union-attr]


# ---------------------------------------------------------------- rate limits


def test_rate_limit_headers_present_and_decreasing(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    server.set_limits(rpm=5, itpm=10_000, otpm=1_000)
    server.script(text("a"), text("bb" * 10))
    raws = [
        client.messages.with_raw_response.create(model=MODEL, max_tokens=16, messages=[user("hi")])
        for _ in range(2)
    ]
    h1, h2 = (r.headers for r in raws)
    assert h1["anthropic-ratelimit-requests-limit"] == "5"
    assert (h1["anthropic-ratelimit-requests-remaining"], h2["anthropic-ratelimit-requests-remaining"]) == ("4", "3")
    in1, in2 = (int(h["anthropic-ratelimit-input-tokens-remaining"]) for h in (h1, h2))
    assert 10_000 > in1 > in2
    out1, out2 = (int(h["anthropic-ratelimit-output-tokens-remaining"]) for h in (h1, h2))
    assert (out1, out2) == (999, 994)
    assert h2["anthropic-ratelimit-tokens-limit"] == "1000"  # output is the tighter one
    assert h2["anthropic-ratelimit-tokens-remaining"] == "994"
    for name in ("requests", "input-tokens", "output-tokens", "tokens"):
        reset = dt.datetime.fromisoformat(h2[f"anthropic-ratelimit-{name}-reset"].replace("Z", "+00:00"))
        assert reset.tzinfo is not None
    assert h1["request-id"] != h2["request-id"]


def test_rpm_window_enforced_with_retry_after(
    server: FakeMessagesAPI, client: anthropic.Anthropic, clock: FakeClock
) -> None:
    server.set_limits(rpm=2)
    server.script(text("1"), text("2"), text("3"))
    for _ in range(2):
        client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])
        clock.advance(10)
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")])
    assert info.value.response.headers["retry-after"] == "40"  # first request leaves the window at t0+60
    assert server.pending == 1  # the scripted reply waits for the retry
    clock.advance(40)
    assert client.messages.create(model=MODEL, max_tokens=16, messages=[user("hi")]).content[0].text == "3"
    assert server.count_429 == 1
    assert server.max_window_usage("requests") == 2
    assert len(server.usage_log) == 3


def test_itpm_counts_cache_writes_not_reads(
    server: FakeMessagesAPI, client: anthropic.Anthropic, clock: FakeClock
) -> None:
    body = {"model": MODEL, "max_tokens": 16, "system": cached_system(BIG_SYSTEM), "messages": [user("hi")]}
    total = estimate_tokens(body)
    server.set_limits(itpm=total + 100)
    server.script(text("a"), text("b"), text("c"))
    first = client.messages.create(**body)
    clock.advance(1)
    second = client.messages.create(**body)  # a cache read: nearly free for ITPM
    clock.advance(1)
    third = client.messages.create(**body)
    assert first.usage.cache_creation_input_tokens > 1024
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert third.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert server.count_429 == 0
    assert server.max_window_usage("input_tokens") == total + 2 * first.usage.input_tokens
    assert server.max_window_usage("cache_read_input_tokens") == 2 * second.usage.cache_read_input_tokens


def test_otpm_refuses_reply_that_would_not_fit(
    server: FakeMessagesAPI, client: anthropic.Anthropic, clock: FakeClock
) -> None:
    server.set_limits(otpm=100)
    server.script(text("x", output_tokens=80), text("y", output_tokens=30))
    client.messages.create(model=MODEL, max_tokens=100, messages=[user("hi")])
    clock.advance(5)
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model=MODEL, max_tokens=100, messages=[user("hi")])
    assert info.value.response.headers["retry-after"] == "55"
    assert "output tokens per minute" in str(info.value)
    assert server.max_window_usage("output_tokens") == 80


# ---------------------------------------------------------------- prompt caching


def test_cache_read_on_second_identical_request(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    body = {"model": MODEL, "max_tokens": 16, "system": cached_system(BIG_SYSTEM), "messages": [user("hi")]}
    server.script(text("a"), text("b"))
    first = client.messages.create(**body).usage
    second = client.messages.create(**body).usage
    assert first.cache_read_input_tokens == 0
    assert first.cache_creation_input_tokens >= 1024
    assert first.input_tokens == estimate_tokens(body) - first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.input_tokens == first.input_tokens  # only the uncached "hi"


def test_no_cache_under_1024_tokens(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    body = {"model": MODEL, "max_tokens": 16, "system": cached_system("short system"), "messages": [user("hi")]}
    server.script(text("a"), text("b"))
    for _ in range(2):
        usage = client.messages.create(**body).usage
        assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)
        assert usage.input_tokens == estimate_tokens(body)


def test_cache_ttl_expiry_and_refresh(
    server: FakeMessagesAPI, client: anthropic.Anthropic, clock: FakeClock
) -> None:
    body = {"model": MODEL, "max_tokens": 16, "system": cached_system(BIG_SYSTEM), "messages": [user("hi")]}
    server.script(*[text(str(i)) for i in range(4)])
    assert client.messages.create(**body).usage.cache_creation_input_tokens > 0
    clock.advance(299)
    assert client.messages.create(**body).usage.cache_read_input_tokens > 0  # hit refreshes the 5 min TTL
    clock.advance(299)
    assert client.messages.create(**body).usage.cache_read_input_tokens > 0
    clock.advance(301)
    expired = client.messages.create(**body).usage
    assert expired.cache_read_input_tokens == 0 and expired.cache_creation_input_tokens > 0


def test_cache_lookback_finds_earlier_breakpoint_in_a_growing_conversation(
    server: FakeMessagesAPI, client: anthropic.Anthropic
) -> None:
    def turn(messages: list[dict[str, Any]]) -> anthropic.types.Usage:
        last = messages[-1]
        marked = [*messages[:-1], {**last, "content": [{**last["content"][0], "cache_control": {"type": "ephemeral"}}]}]
        return client.messages.create(model=MODEL, max_tokens=16, system=BIG_SYSTEM, messages=marked).usage

    server.script(text("a"), text("b"))
    convo = [user([{"type": "text", "text": "first question"}])]
    first = turn(convo)
    convo += [
        {"role": "assistant", "content": [{"type": "text", "text": "first answer"}]},
        user([{"type": "text", "text": "second question"}]),
    ]
    second = turn(convo)
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens == estimate_tokens(
        {"system": BIG_SYSTEM, "messages": convo[:1]}
    )
    assert second.cache_creation_input_tokens == estimate_tokens({"messages": convo[1:]})
    assert second.input_tokens == 0


def test_too_many_breakpoints_is_rejected(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    blocks = [{"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4 blocks with cache_control"):
        client.messages.create(model=MODEL, max_tokens=16, system=blocks, messages=[user("hi")])


# ---------------------------------------------------------------- pacing, responder, process


def test_seconds_per_output_token_paces_plain_and_streamed(
    server: FakeMessagesAPI, client: anthropic.Anthropic
) -> None:
    server.seconds_per_output_token = 0.01
    server.script(text("x", output_tokens=20), text("word " * 20, output_tokens=20))
    t0 = time.monotonic()
    client.messages.create(model=MODEL, max_tokens=64, messages=[user("hi")])
    plain = time.monotonic() - t0
    stamps: list[float] = []
    t0 = time.monotonic()
    with client.messages.stream(model=MODEL, max_tokens=64, messages=[user("hi")]) as s:
        for event in s:
            if event.type == "text":
                stamps.append(time.monotonic() - t0)
    assert plain >= 0.19
    assert stamps[-1] >= 0.17 and stamps[0] < stamps[-1] - 0.1  # deltas spread over the generation time


def test_responder_serves_concurrent_agents(server: FakeMessagesAPI, client: anthropic.Anthropic) -> None:
    def responder(body: dict[str, Any]) -> Any:
        return text(f"{body['system']} got {body['messages'][-1]['content']}")

    server.responder = responder
    results: dict[str, str] = {}

    def agent(name: str) -> None:
        for i in range(3):
            msg = client.messages.create(model=MODEL, max_tokens=16, system=name, messages=[user(str(i))])
            results[f"{name}/{i}"] = msg.content[0].text  # type: ignore[union-attr]

    threads = [threading.Thread(target=agent, args=(f"agent-{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 12
    assert all(v == f"{k.split('/')[0]} got {k.split('/')[1]}" for k, v in results.items())
    assert len(server.requests) == 12


def test_runs_as_its_own_process() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.messages_api", "--port", "0", "--echo", "--rpm", "100"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["base_url"] == f"http://127.0.0.1:{info['port']}"
        client = anthropic.Anthropic(api_key="k", base_url=info["base_url"], max_retries=0)
        raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=16, messages=[user("ping")])
        assert raw.parse().content[0].text == "(fake echo) ping"  # type: ignore[union-attr]
        assert raw.headers["anthropic-ratelimit-requests-remaining"] == "99"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
