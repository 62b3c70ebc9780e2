"""What the provider's prompt cache holds of our own requests, as far as the kernel can tell.

Why: Anthropic counts uncached input and cache writes toward its input-tokens-per-
minute limit, and cache reads not at all.  A multi-step agent re-sends its whole
conversation every step but pays only for what is new, so reserving the whole prompt
at admission would hold back most of the budget for nothing until the stream starts.
:meth:`PromptCacheModel.estimate` reserves the part that will be counted: the prompt
after the longest prefix the provider confirmed it has cached.

How the model is kept (Anthropic's documented rules, nothing provider-specific):

* The prompt is the block sequence tools -> system -> messages.  A cache entry is the
  prefix up to a block with ``cache_control`` (a breakpoint); a later request reads it
  if the prefix ends at one of its own breakpoints or up to ``LOOKBACK`` blocks before
  one, for the same model.  Entries live ``TTL`` s, refreshed by every read.
* A prefix counts as cached only once a response *confirmed* it: at ``message_start``
  the usage says how many tokens were read from or written to the cache
  (:meth:`observe`); the breakpoints of that request up to that many tokens are
  recorded.  A request sent before that confirmation is estimated as uncached.
* Tokens per character are learned per model from the usage of every call (the
  highest ratio of the recent calls, so the estimate errs high), starting from a
  deliberately high 1/3.

INVARIANT: the estimate is never relied on alone.  When the provider counts more than
was reserved (a cache entry evicted early, text that tokenizes densely) the scheduler
books the difference at ``message_start`` (``Scheduler.settle_input``), so later
admissions see it; ``SAFETY`` s before an entry's expiry it is no longer trusted.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TTL = 300.0
#: An entry is trusted until this long before the provider would drop it.
SAFETY = 30.0
LOOKBACK = 20
#: Tokens per character before the first call of a model reports its usage.
INITIAL_RATIO = 1 / 3
#: How many recent calls the learned ratio is the maximum of.
RATIO_SAMPLES = 64
#: Relative margin on the uncached part, plus a few tokens of framing.
MARGIN = 0.05
FRAMING_TOKENS = 8
MAX_ENTRIES = 20_000
#: The shortest prefix Anthropic caches for most models (some need 2048 or 4096; a
#: shorter prefix wrongly believed cached is corrected at ``message_start``).
MIN_CACHE_TOKENS = 1024


@dataclass(frozen=True)
class Prefixes:
    """A request's block boundaries: running hash and characters up to each block."""

    model: str
    keys: tuple[str, ...]
    chars: tuple[int, ...]
    breakpoints: tuple[int, ...]

    @property
    def total_chars(self) -> int:
        return self.chars[-1] if self.chars else 0


def _strip_cache_control(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_cache_control(v) for k, v in obj.items() if k != "cache_control"}
    if isinstance(obj, list):
        return [_strip_cache_control(v) for v in obj]
    return obj


def _blocks(request: dict[str, Any]) -> list[tuple[str, Any]]:
    """(kind, block) in prompt order; a string system prompt or content is one text block."""
    out: list[tuple[str, Any]] = [("tool", t) for t in request.get("tools") or []]
    system = request.get("system")
    if isinstance(system, str) and system:
        out.append(("system", {"type": "text", "text": system}))
    elif isinstance(system, list):
        out.extend(("system", b) for b in system)
    for msg in request.get("messages") or []:
        content = msg.get("content", "")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        out.extend((str(msg.get("role", "user")), b) for b in blocks or [])
    return out


def prefixes(request: dict[str, Any]) -> Prefixes:
    model = str(request.get("model", ""))
    h = hashlib.sha256(model.encode())
    keys: list[str] = []
    chars: list[int] = []
    breakpoints: list[int] = []
    running = 0
    for i, (kind, block) in enumerate(_blocks(request)):
        if isinstance(block, dict) and block.get("cache_control"):
            breakpoints.append(i)
        body = json.dumps(_strip_cache_control(block), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False)
        h.update(f"\x00{kind}:{body}".encode())
        keys.append(h.hexdigest())
        running += len(body)
        chars.append(running)
    return Prefixes(model, tuple(keys), tuple(chars), tuple(breakpoints))


class PromptCacheModel:
    """The kernel's belief about the provider's prompt cache; see the module docstring."""

    def __init__(self, clock: Callable[[], float], *, ttl: float = TTL,
                 safety: float = SAFETY, lookback: int = LOOKBACK) -> None:
        self.clock = clock
        self.ttl, self.safety, self.lookback = ttl, safety, lookback
        self._expires: dict[str, float] = {}     # prefix key -> when the provider drops it
        self._ratios: dict[str, deque[float]] = {}

    def ratio(self, model: str) -> float:
        samples = self._ratios.get(model)
        return max(samples) if samples else INITIAL_RATIO

    def cached_chars(self, p: Prefixes) -> int:
        """Characters of the longest prefix of ``p`` the provider will read from its cache."""
        now = self.clock()
        best = 0
        for b in p.breakpoints:
            for j in range(b, max(-1, b - self.lookback - 1), -1):
                if p.chars[j] <= best:
                    break
                if self._expires.get(p.keys[j], -math.inf) - self.safety > now:
                    best = p.chars[j]
                    break
        return best

    def estimate(self, request: dict[str, Any]) -> int:
        """Input tokens the provider will count toward its limit: uncached + cache writes."""
        p = prefixes(request)
        cached = self.cached_chars(p)
        uncached_blocks = sum(1 for c in p.chars if c > cached)
        uncached = p.total_chars - cached
        return (math.ceil(self.ratio(p.model) * uncached * (1 + MARGIN))
                + uncached_blocks + FRAMING_TOKENS)

    def observe(self, request: dict[str, Any], *, input_tokens: int,
                cache_creation_input_tokens: int, cache_read_input_tokens: int) -> None:
        """The usage reported at ``message_start`` of ``request``: learn the token ratio
        and record (or refresh) the prefixes the provider now holds."""
        p = prefixes(request)
        total = input_tokens + cache_creation_input_tokens + cache_read_input_tokens
        if total <= 0 or p.total_chars <= 0:
            return
        observed = total / p.total_chars
        self._ratios.setdefault(p.model, deque(maxlen=RATIO_SAMPLES)).append(observed)
        cached_tokens = cache_creation_input_tokens + cache_read_input_tokens
        if cached_tokens <= 0:
            return
        # Breakpoints whose prefix is no longer than what the provider cached (with this
        # call's own ratio, so rounding cannot push the last one out).
        reach = cached_tokens * 1.01 + 2
        now = self.clock()
        until = now + self.ttl
        covered = max((p.chars[b] for b in p.breakpoints if p.chars[b] * observed <= reach),
                      default=0)
        shortest = MIN_CACHE_TOKENS / observed
        if covered <= 0:
            return
        for b in p.breakpoints:
            if shortest * 0.98 <= p.chars[b] <= covered:
                self._expires[p.keys[b]] = until
        for j, key in enumerate(p.keys):   # entries read through the lookback: refreshed
            if p.chars[j] <= covered and key in self._expires:
                self._expires[key] = until
        if len(self._expires) > MAX_ENTRIES:   # forget what expired, then the oldest
            live = sorted(((t, k) for k, t in self._expires.items() if t > now), reverse=True)
            self._expires = {k: t for t, k in live[:MAX_ENTRIES // 2]}
