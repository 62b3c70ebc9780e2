"""Model calls: admission by the scheduler, the streamed call, retries, settlement.

Retry policy (one place, for every agent):
- 429 / 529: the provider's retry-after pauses *all* admissions (scheduler back-off),
  then the call is retried; the SDK's own retries are off so nobody hammers the provider.
- 5xx, timeouts, dropped connections: retried with exponential back-off.
- 400/401/403/404: not retried; the error says what the person can do.
"""
from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING, Any

import anthropic

from kernel import keys
from kernel.errors import ModelError
from kernel.proc import Process

if TYPE_CHECKING:
    from kernel.core import Kernel
    from kernel.specs import AgentSpec

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BASE_BACKOFF = 0.5
MAX_BACKOFF = 30.0


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


class Inference:
    def __init__(self, kernel: "Kernel") -> None:
        self._kernel = kernel
        self._client: anthropic.AsyncAnthropic | None = None

    def client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            key = keys.api_key()
            if not key:
                raise ModelError("no API key: set ANTHROPIC_API_KEY or run `deskpilot auth set-key`")
            # base_url comes from ANTHROPIC_BASE_URL, as the SDK reads it.
            self._client = anthropic.AsyncAnthropic(
                api_key=key, max_retries=0, timeout=self._kernel.config.model_timeout)
        return self._client

    def preempt_wanted(self, proc: Process) -> bool:
        return False

    async def call(self, proc: Process, spec: "AgentSpec", request: dict[str, Any]) -> dict[str, Any]:
        last_error = "no attempt made"
        for attempt in range(MAX_ATTEMPTS):
            try:
                return await self._attempt(proc, request)
            except anthropic.RateLimitError as exc:
                delay = _retry_after(exc) or self._backoff(attempt)
                last_error = f"rate limited by the provider (429), retried {attempt + 1} times"
            except anthropic.APIStatusError as exc:
                if exc.status_code in (529,) or exc.status_code >= 500:
                    delay = _retry_after(exc) or self._backoff(attempt)
                    last_error = f"the provider is overloaded or failing ({exc.status_code})"
                else:
                    raise ModelError(_explain(exc)) from None
            except anthropic.APITimeoutError:
                delay = self._backoff(attempt)
                last_error = f"the model call timed out after {self._kernel.config.model_timeout:.0f} s"
            except anthropic.APIConnectionError as exc:
                delay = self._backoff(attempt)
                last_error = f"could not reach the provider: {exc.__cause__ or exc}"
            except anthropic.APIResponseValidationError as exc:
                raise ModelError(f"the provider's answer was malformed: {exc}") from None
            log.warning("pid %d: %s; retrying in %.1f s", proc.pid, last_error, delay)
            self._kernel.bus.publish({"type": "proc.retry", "pid": proc.pid, "error": last_error,
                                      "delay": delay})
            await asyncio.sleep(delay)
        raise ModelError(f"{last_error}; gave up after {MAX_ATTEMPTS} attempts")

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(MAX_BACKOFF, BASE_BACKOFF * 2 ** attempt) * (0.5 + random.random() / 2)

    async def _attempt(self, proc: Process, request: dict[str, Any]) -> dict[str, Any]:
        bus = self._kernel.bus
        async with self.client().messages.stream(**request) as stream:
            async for event in stream:
                if event.type == "text":
                    bus.publish({"type": "proc.delta", "pid": proc.pid, "text": event.text})
            message = await stream.get_final_message()
        return message.model_dump(mode="json", exclude_none=True)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
