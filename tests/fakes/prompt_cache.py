"""Deterministic token estimate and prompt-cache emulation for the fake Messages API.

Token estimate
--------------
A request is cut into *segments*, in the order Anthropic builds its prompt
prefix: every tool definition, then every system block (a string system prompt
is one text block), then every content block of every message (a string
``content`` is one text block).  Each segment costs
``ceil(len(canonical_json(segment)) / 4)`` tokens (at least 1), where
``canonical_json`` is ``json.dumps(..., sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` of the block with every ``cache_control`` key removed.
:func:`estimate_tokens` is the sum over all segments; the server uses it both
for ``/v1/messages/count_tokens`` and for ``usage`` of ``/v1/messages``.

Prompt caching
--------------
Blocks carrying ``cache_control: {"type": "ephemeral"}`` are breakpoints.  The
cache key of a prefix is a running hash of the model name and the segments up
to and including that block.  See :meth:`PromptCache.plan` for the rules.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

CHARS_PER_TOKEN = 4
DEFAULT_MIN_CACHE_TOKENS = 1024
DEFAULT_TTL = 300.0  # "5m"
LONG_TTL = 3600.0  # "1h"
LOOKBACK_BLOCKS = 20
MAX_BREAKPOINTS = 4


@dataclass(frozen=True)
class Segment:
    """One block of the prompt prefix."""

    key: str  # canonical identity of the block (role-qualified for messages)
    tokens: int
    breakpoint: bool
    ttl: float | None  # requested cache ttl when ``breakpoint`` (None → default)


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _strip_cache_control(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_cache_control(v) for k, v in obj.items() if k != "cache_control"}
    if isinstance(obj, list):
        return [_strip_cache_control(v) for v in obj]
    return obj


def _text_tokens(s: str) -> int:
    return max(1, math.ceil(len(s) / CHARS_PER_TOKEN))


def _ttl_of(cache_control: Any) -> float | None:
    if isinstance(cache_control, dict) and cache_control.get("ttl") == "1h":
        return LONG_TTL
    return None


def _segment(kind: str, block: Any) -> Segment:
    if isinstance(block, str):
        block = {"type": "text", "text": block}
    cc = block.get("cache_control") if isinstance(block, dict) else None
    body = _canonical(_strip_cache_control(block))
    return Segment(
        key=f"{kind}:{body}",
        tokens=_text_tokens(body),
        breakpoint=cc is not None,
        ttl=_ttl_of(cc),
    )


def segments(body: dict[str, Any]) -> list[Segment]:
    """The request's prompt prefix, tools → system → messages, one segment per block."""
    out: list[Segment] = [_segment("tool", t) for t in body.get("tools") or []]
    system = body.get("system")
    if isinstance(system, str) and system:
        out.append(_segment("system", system))
    elif isinstance(system, list):
        out.extend(_segment("system", b) for b in system)
    for msg in body.get("messages") or []:
        role = msg.get("role", "user") if isinstance(msg, dict) else "user"
        content = msg.get("content", "") if isinstance(msg, dict) else msg
        blocks = [content] if isinstance(content, str) else list(content or [])
        out.extend(_segment(role, b) for b in blocks)
    return out


def estimate_tokens(request_body: dict[str, Any]) -> int:
    """Deterministic input-token estimate: sum of ceil(len(canonical block JSON)/4)."""
    return sum(s.tokens for s in segments(request_body))


def count_breakpoints(request_body: dict[str, Any]) -> int:
    return sum(1 for s in segments(request_body) if s.breakpoint)


@dataclass(frozen=True)
class CachePlan:
    """What a request would read from / write to the cache (computed without side effects)."""

    total_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    read_key: str | None
    writes: tuple[tuple[str, float], ...] = field(default=())  # (prefix key, ttl)

    @property
    def input_tokens(self) -> int:
        """The uncached remainder, reported as ``usage.input_tokens``."""
        return self.total_tokens - self.cache_read_input_tokens - self.cache_creation_input_tokens

    @property
    def rate_limited_input_tokens(self) -> int:
        """What counts toward input-tokens-per-minute: uncached + cache writes, not reads."""
        return self.input_tokens + self.cache_creation_input_tokens


class PromptCache:
    """Emulates Anthropic prompt caching with an injectable clock.

    Rules (``plan``):

    * Breakpoints are blocks with ``cache_control``; the cached unit is the
      whole prefix (tools → system → messages) up to and including that block,
      for the same model.
    * Read: for each breakpoint, the prefix ending at the breakpoint and at up
      to ``lookback`` block boundaries before it is looked up; the longest live
      entry found is a cache hit (``cache_read_input_tokens`` = its length) and
      its TTL is refreshed when the plan is committed.
    * Write: every breakpoint whose prefix is longer than the hit and at least
      ``min_tokens`` long is stored with its TTL (5 min, or 1 h for
      ``"ttl": "1h"``); ``cache_creation_input_tokens`` = tokens from the end of
      the hit up to the last written breakpoint.
    * Everything else is ``input_tokens``.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        min_tokens: int = DEFAULT_MIN_CACHE_TOKENS,
        ttl: float = DEFAULT_TTL,
        lookback: int = LOOKBACK_BLOCKS,
    ) -> None:
        self.clock = clock
        self.min_tokens = min_tokens
        self.ttl = ttl
        self.lookback = lookback
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (expires_at, ttl)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        now = self.clock()
        with self._lock:
            return sum(1 for exp, _ in self._entries.values() if exp > now)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def plan(self, model: str, segs: list[Segment]) -> CachePlan:
        now = self.clock()
        total = sum(s.tokens for s in segs)
        prefix_keys: list[str] = []
        prefix_tokens: list[int] = []
        h = hashlib.sha256(model.encode())
        running = 0
        for s in segs:
            h.update(b"\x00" + s.key.encode())
            prefix_keys.append(h.hexdigest())
            running += s.tokens
            prefix_tokens.append(running)

        breakpoints = [i for i, s in enumerate(segs) if s.breakpoint]
        read_index = -1
        with self._lock:
            for b in breakpoints:
                for j in range(b, max(-1, b - self.lookback - 1), -1):
                    if j <= read_index:
                        break
                    entry = self._entries.get(prefix_keys[j])
                    if entry is not None and entry[0] > now:
                        read_index = j
                        break
        read_tokens = prefix_tokens[read_index] if read_index >= 0 else 0

        writes: list[tuple[str, float]] = []
        last_write = -1
        for b in breakpoints:
            if b > read_index and prefix_tokens[b] >= self.min_tokens:
                writes.append((prefix_keys[b], segs[b].ttl or self.ttl))
                last_write = b
        creation = prefix_tokens[last_write] - read_tokens if last_write >= 0 else 0
        return CachePlan(
            total_tokens=total,
            cache_read_input_tokens=read_tokens,
            cache_creation_input_tokens=creation,
            read_key=prefix_keys[read_index] if read_index >= 0 else None,
            writes=tuple(writes),
        )

    def commit(self, plan: CachePlan) -> None:
        now = self.clock()
        with self._lock:
            if plan.read_key is not None and plan.read_key in self._entries:
                _, ttl = self._entries[plan.read_key]
                self._entries[plan.read_key] = (now + ttl, ttl)
            for key, ttl in plan.writes:
                self._entries[key] = (now + ttl, ttl)
            for key in [k for k, (exp, _) in self._entries.items() if exp <= now]:
                del self._entries[key]
