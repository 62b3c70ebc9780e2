"""Model calls: admission by the scheduler, the streamed call, retries, settlement.

Invariant: every model call of every agent passes `Scheduler.admit` first and is settled
(or abandoned) after, so the user's budget is never exceeded.

Retry policy (one place, for every agent):
- 429 / 529: the provider's retry-after pauses *all* admissions (one back-off shared by
  every agent, in the scheduler); the SDK's own retries are off so nobody hammers it.
- 5xx, timeouts, dropped connections: retried with exponential back-off.
- 400/401/403/404: not retried; the error says what the person can do.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import anthropic

from kernel import budget_store, keys
from kernel.errors import ModelError
from kernel.proc import Process, State
from kernel.promptcache import PromptCacheModel
from kernel.sched import (
    Budget,
    BudgetError,
    ModelPrice,
    RequestTooLarge,
    Reservation,
    Scheduler,
    Ticket,
    Usage,
    apply_setting,
)
from kernel.spend_store import SpendStore

if TYPE_CHECKING:
    from kernel.core import Kernel
    from kernel.specs import AgentSpec

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BASE_BACKOFF = 0.5
MAX_BACKOFF = 30.0
RESPONSE_CACHE_SIZE = 256
RESPONSE_CACHE_TTL = 600.0


def _retry_after(exc: anthropic.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _explain(exc: anthropic.APIStatusError) -> str:
    status = exc.status_code
    detail = exc.message
    if status == 401:
        return ("the provider refused the API key (401). Set a valid key with "
                "`deskpilot auth set-key` or ANTHROPIC_API_KEY.")
    if status == 403:
        return f"the provider refused the request (403 permission denied): {detail}"
    if status == 404:
        return f"the provider does not know this model or endpoint (404): {detail}"
    if status in (400, 413, 422):
        return f"the provider rejected the request ({status}): {detail}"
    return f"the provider answered {status}: {detail}"


class ResponseCache:
    """Answers identical requests of deterministic agents without a model call."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self.hits = 0

    @staticmethod
    def key(request: dict[str, Any], deterministic: bool) -> str | None:
        if not deterministic:
            return None
        return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()

    def get(self, key: str | None) -> dict[str, Any] | None:
        if key is None or key not in self._entries:
            return None
        stamp, message = self._entries[key]
        if time.monotonic() - stamp > RESPONSE_CACHE_TTL:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return message

    def put(self, key: str | None, message: dict[str, Any]) -> None:
        if key is None:
            return
        self._entries[key] = (time.monotonic(), message)
        while len(self._entries) > RESPONSE_CACHE_SIZE:
            self._entries.popitem(last=False)


class Inference:
    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self._client: anthropic.AsyncAnthropic | None = None
        budget, prices = budget_store.load(kernel.where.config / "budget.toml")
        self.scheduler = Scheduler(budget, prices, on_wait_change=self._wait_changed)
        self.spend = SpendStore(kernel.db)
        for row in self.spend.this_month():
            self.scheduler.restore_spend(
                row["agent"], row["ts"], requests=row["requests"], usd=row["usd"],
                usage=Usage(row["input_tokens"], row["output_tokens"],
                            row["cache_creation_input_tokens"], row["cache_read_input_tokens"]))
        self.responses = ResponseCache()
        # Input estimates: only what the provider will count (its prompt cache reads not).
        self.prompt_cache = PromptCacheModel(self.scheduler.clock.now)
        self._started: dict[int, float] = {}

    def client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            key = keys.api_key()
            if not key:
                raise ModelError("no API key: set ANTHROPIC_API_KEY or run `deskpilot auth set-key`")
            # base_url comes from ANTHROPIC_BASE_URL, as the SDK reads it.
            self._client = anthropic.AsyncAnthropic(
                api_key=key, max_retries=0, timeout=self._kernel.config.model_timeout)
        return self._client

    # -- budget -------------------------------------------------------------------------
    def set_budget(self, key: str, value: str) -> Budget:
        """`budget set KEY VALUE`: validated, saved, applied at once to running agents."""
        budget = apply_setting(self.scheduler.budget, key, value)
        budget_store.save(self._kernel.where.config / "budget.toml", budget)
        self.scheduler.update_budget(budget)
        self._kernel.bus.publish({"type": "budget.changed", "budget": budget.model_dump()})
        return budget

    def set_price(self, model: str, *, input: float, output: float,
                  cache_write: float | None = None, cache_read: float | None = None) -> dict[str, Any]:
        """`budget price`: one model's US dollars per million tokens, saved and applied at
        once (spend caps and cost reports use it from the next call on).  Unset cache
        prices follow Anthropic's ratios to the input price."""
        model = model.strip()
        if not model or len(model) > 200:
            raise BudgetError("give a model name (or * for every model without a price)")
        try:
            price = ModelPrice.of(input, output, cache_write, cache_read)
        except (TypeError, ValueError) as exc:
            raise BudgetError(str(exc)) from None
        self.scheduler.prices.put(model, price)
        budget_store.save_price(self._kernel.where.config / "budget.toml", model, price)
        self._kernel.bus.publish({"type": "budget.changed", "price": {model: vars(price)}})
        return {model: vars(price).copy()}

    def report(self) -> dict[str, Any]:
        out = self.scheduler.report()
        out["response_cache_hits"] = self.responses.hits
        return out

    def preempt_wanted(self, proc: Process) -> bool:
        return self.scheduler.preempt_wanted(proc.pid)

    def _wait_changed(self, pid: int, reason: str | None) -> None:
        """The scheduler's word on who waits for budget, mirrored in the process table."""
        try:
            proc = self._kernel.procs.get(pid)
        except LookupError:
            return
        if not proc.alive:
            return
        if reason is not None and proc.state in (State.RUNNING, State.WAITING):
            if proc.state is State.RUNNING or (proc.reason or "").startswith("budget"):
                detail = reason.removeprefix("budget: ")
                self._kernel.procs.transition(proc, State.WAITING, reason=f"budget: {detail}")
        elif reason is None and proc.state is State.WAITING \
                and (proc.reason or "").startswith("budget"):
            self._kernel.procs.transition(proc, State.RUNNING)

    def forget(self, pid: int) -> None:
        self.scheduler.forget(pid)
        self._started.pop(pid, None)

    # -- calls --------------------------------------------------------------------------
    def _ticket(self, proc: Process, spec: AgentSpec, request: dict[str, Any]) -> Ticket:
        now = self.scheduler.clock.now()
        started = self._started.setdefault(proc.pid, now)
        deadline = started + spec.deadline_seconds if spec.deadline_seconds else None
        return Ticket(pid=proc.pid, agent=proc.agent, priority=spec.priority, weight=spec.weight,
                      deadline=deadline, model=request["model"],
                      est_input_tokens=self.prompt_cache.estimate(request),
                      max_tokens=request["max_tokens"],
                      agent_tokens_per_minute=spec.quotas.tokens_per_minute)

    async def call(self, proc: Process, spec: AgentSpec, request: dict[str, Any]) -> dict[str, Any]:
        cache_key = ResponseCache.key(request, spec.deterministic)
        cached = self.responses.get(cache_key)
        if cached is not None:
            return cached
        last_error = "no attempt made"
        for attempt in range(MAX_ATTEMPTS):
            try:
                reservation = await self.scheduler.admit(self._ticket(proc, spec, request))
            except RequestTooLarge as exc:
                raise ModelError(f"this call can never fit the budget: {exc}") from None
            delay = 0.0
            try:
                message, headers = await self._attempt(proc, request, reservation)
            except anthropic.RateLimitError as exc:
                self._abandon(proc, reservation, False)
                self.scheduler.on_provider_headers(exc.response.headers)
                # One back-off for every agent: the scheduler holds all admissions.
                self.scheduler.on_rate_limited(_retry_after(exc) or self._backoff(attempt))
                last_error = f"rate limited by the provider (429), retried {attempt + 1} times"
            except anthropic.APIStatusError as exc:
                if exc.status_code == 529:
                    self._abandon(proc, reservation, False)
                    self.scheduler.on_rate_limited(_retry_after(exc) or self._backoff(attempt))
                    last_error = "the provider is overloaded (529)"
                elif exc.status_code >= 500:
                    self._abandon(proc, reservation, True)
                    delay = _retry_after(exc) or self._backoff(attempt)
                    last_error = f"the provider failed ({exc.status_code})"
                else:
                    self._abandon(proc, reservation, True)
                    raise ModelError(_explain(exc)) from None
            except anthropic.APITimeoutError:
                self._abandon(proc, reservation, True)
                delay = self._backoff(attempt)
                last_error = f"the model call timed out after {self._kernel.config.model_timeout:.0f} s"
            except anthropic.APIConnectionError as exc:
                self._abandon(proc, reservation, True)
                delay = self._backoff(attempt)
                last_error = f"could not reach the provider: {exc.__cause__ or exc}"
            except anthropic.APIResponseValidationError as exc:
                self._abandon(proc, reservation, True)
                raise ModelError(f"the provider's answer was malformed: {exc}") from None
            except anthropic.APIError as exc:  # e.g. an error event inside the stream
                self._abandon(proc, reservation, True)
                delay = self._backoff(attempt)
                last_error = f"the provider's stream failed: {exc}"
            except BaseException:
                self._abandon(proc, reservation, True)
                raise
            else:
                usage = Usage.from_api(message.get("usage") or {})
                self.scheduler.settle(reservation, usage)
                self.spend.record(proc.pid, proc.agent, reservation.model, 1, usage,
                                  self.scheduler.prices.cost(reservation.model, usage))
                self.scheduler.on_provider_headers(headers)
                self.responses.put(cache_key, message)
                return message
            log.warning("pid %d: %s; retrying", proc.pid, last_error)
            self._kernel.bus.publish({"type": "proc.retry", "pid": proc.pid, "error": last_error,
                                      "delay": delay or self.scheduler.paused_for()})
            if delay:
                await asyncio.sleep(delay)
        raise ModelError(f"{last_error}; gave up after {MAX_ATTEMPTS} attempts")

    def _abandon(self, proc: Process, reservation: Reservation, reached_provider: bool) -> None:
        """A failed call: free its reservation; input the provider received is still paid."""
        self.scheduler.abandon(reservation, reached_provider=reached_provider)
        if reached_provider:
            usage = Usage(input_tokens=reservation.input_tokens)
            self.spend.record(proc.pid, proc.agent, reservation.model, 1, usage,
                              self.scheduler.prices.cost(reservation.model, usage))

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(MAX_BACKOFF, BASE_BACKOFF * 2 ** attempt) * (0.5 + random.random() / 2)

    async def _attempt(self, proc: Process, request: dict[str, Any],
                       reservation: Reservation) -> tuple[dict[str, Any], Any]:
        bus = self._kernel.bus
        async with self.client().messages.stream(**request) as stream:
            async for event in stream:
                if event.type == "message_start":
                    # The input the provider counted is known now: the scheduler frees
                    # the rest of the estimate while the answer is still being generated.
                    usage = Usage.from_api(event.message.usage.model_dump())
                    self.prompt_cache.observe(
                        request, input_tokens=usage.input_tokens,
                        cache_creation_input_tokens=usage.cache_creation_input_tokens,
                        cache_read_input_tokens=usage.cache_read_input_tokens)
                    self.scheduler.settle_input(reservation, usage.counted_input_tokens)
                elif event.type == "text":
                    bus.publish({"type": "proc.delta", "pid": proc.pid, "text": event.text})
            message = await stream.get_final_message()
            headers = stream.response.headers
        return message.model_dump(mode="json", exclude_none=True), headers

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
