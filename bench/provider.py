"""The fake provider of the benchmark: the test suite's FakeMessagesAPI, instrumented.

Every request that reaches admission (the rate limiter) is recorded with its task tag,
whether it was admitted or drew a 429, the input tokens the server counts toward its
input-tokens-per-minute limit (uncached + cache writes), cache reads and output tokens,
so the metrics can attribute tokens to agents and tasks as the server saw them.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from bench.workload import build_request, responder, tag_of, tool_definitions, turn_of
from tests.fakes.messages_api import FakeMessagesAPI, RecordedRequest
from tests.fakes.prompt_cache import CachePlan, segments
from tests.fakes.ratelimit import Admission


@dataclass(frozen=True)
class CallRecord:
    t: float              # server clock (time.monotonic) at admission
    wall: float           # time.time() at admission
    agent: str
    task: int
    turn: int
    admitted: bool
    counted_input: int    # toward ITPM: uncached input + cache writes
    cache_read: int
    total_input: int
    output: int
    generation_s: float   # how long the server streams the answer

    @property
    def tokens(self) -> int:
        """Tokens the call spent as counted by the provider (0 output if refused)."""
        return self.counted_input + (self.output if self.admitted else 0)

    @property
    def end_wall(self) -> float:
        return self.wall + (self.generation_s if self.admitted else 0.0)


class BenchProvider(FakeMessagesAPI):
    """FakeMessagesAPI with the benchmark's responder and a per-call record."""

    def __init__(self, *, itpm: int, seconds_per_output_token: float,
                 retry_after: bool = True) -> None:
        super().__init__(responder=responder, itpm=itpm,
                         seconds_per_output_token=seconds_per_output_token)
        self.itpm = itpm
        self.send_retry_after = retry_after
        self.calls: list[CallRecord] = []
        self._calls_lock = threading.Lock()
        self.warm_shared_prefix()

    def _admit(self, body: dict[str, Any], output_tokens: int) -> tuple[CachePlan, Admission]:
        plan, admission = super()._admit(body, output_tokens)
        agent, task = tag_of(body) or ("unknown", -1)
        rec = CallRecord(t=time.monotonic(), wall=time.time(), agent=agent, task=task,
                         turn=turn_of(body), admitted=admission.admitted,
                         counted_input=plan.rate_limited_input_tokens,
                         cache_read=plan.cache_read_input_tokens, total_input=plan.total_tokens,
                         output=output_tokens,
                         generation_s=output_tokens * self.seconds_per_output_token)
        with self._calls_lock:
            self.calls.append(rec)
        return plan, admission

    def _error(self, rec: RecordedRequest, request_id: str, status: int, kind: str, msg: str,
               retry_after: float | None = None) -> JSONResponse:
        """As the fake's, but 429s may leave out ``retry-after`` (a provider that does not
        say when to come back: clients fall back to their own back-off)."""
        if not self.send_retry_after:
            retry_after = None
        return super()._error(rec, request_id, status, kind, msg, retry_after)

    def warm_shared_prefix(self) -> None:
        """Start with the shared prefix (tools + system prompt) in the prompt cache, as in a
        product that has been running (every call refreshes it).  Otherwise whichever agent
        calls first pays its cache write, a one-off that a two-minute run would count as an
        unfair share.  Nothing is sent: no window holds it, no agent is charged."""
        body = build_request([{"role": "user", "content": "warm"}], tool_definitions())
        body["messages"][0]["content"][0].pop("cache_control")
        self.cache.commit(self.cache.plan(body["model"], segments(body)))

    def records(self) -> list[CallRecord]:
        with self._calls_lock:
            return list(self.calls)

    def receipt_wall(self, agent: str, task: int) -> float | None:
        """When the server first received a request of (agent, task) (wall clock)."""
        for req in self.requests:
            if req.path == "/v1/messages" and isinstance(req.body, dict) \
                    and tag_of(req.body) == (agent, task):
                return req.wall_time
        return None
